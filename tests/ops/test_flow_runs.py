"""How the CLI runs a job as a flow run: the report comes back also from a Failed run,
Ctrl-C stops a flow run cleanly, and a temporary Prefect server never outlives its CLI."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from ops_helpers import (
    children,
    cmdline,
    env_without_prefect_api,
    served_part,
    start_cli,
    wait_gone,
)
from prefect import flow

from david_data.cli._run import report_and_exit, run_flow
from david_data.flows._executor import publish
from david_data.synth.host import Fault, LocalHost


@dataclass(frozen=True)
class TinyReport:
    failures: int

    @property
    def interrupted(self) -> bool:
        return False

    @property
    def failure_count(self) -> int:
        return self.failures

    def summary(self) -> str:
        return f"tiny job: {self.failures} item(s) failed"

    def markdown(self) -> str:
        return f"# tiny job\n\n{self.failures} failed"


@flow(name="tinyjob")
def tinyjob_flow(failures: int) -> TinyReport:
    return publish(TinyReport(failures), key="tiny-report", description="tiny job")  # type: ignore[no-any-return]


@pytest.fixture()
def tiny_flow_module(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("david_data.flows.tinyjob")
    module.tinyjob_flow = tinyjob_flow  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "david_data.flows.tinyjob", module)


@pytest.mark.parametrize(("failures", "code"), [(0, 0), (2, 1)])
def test_a_flow_run_returns_its_report_also_when_it_failed(
    prefect_harness, tiny_flow_module, capsys, failures, code
):
    args = argparse.Namespace(prefect=True, no_progress=True)
    result = report_and_exit(lambda: run_flow("tinyjob", {"failures": failures}, args))
    assert result == code
    assert f"tiny job: {failures} item(s) failed" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_signal_stops_a_flow_run_with_its_summary(prefect_env, tmp_path: Path, how: str):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) and SIGTERM (a pod
    stop; inside a flow run Prefect would turn it into an exception that aborts the run)."""
    served = served_part(tmp_path / "served")
    dest = tmp_path / "mirror"
    log = tmp_path / "cli.log"
    with LocalHost(served) as host:
        host.faults.add(Fault.rate_cap(100_000), times=None)
        cli = start_cli(
            ["mirror", str(dest), "--parts", "0", "--base-url", host.base_url, "--no-progress"],
            {**prefect_env, "PREFECT_LOGGING_EXTRA_LOGGERS": "david_data"},
            log,
        )
        deadline = time.monotonic() + 120
        while host.stats.total_bytes < 200_000:  # the flow run is downloading
            assert cli.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert "Beginning flow run" in log.read_text()
        workers = children(cli.pid)
        if how == "ctrl-c":
            os.killpg(cli.pid, signal.SIGINT)
        else:
            os.kill(cli.pid, signal.SIGTERM)
        code = cli.wait(timeout=120)  # (a hang guard, not a speed requirement)
        served_bytes = host.stats.total_bytes
    output = log.read_text()
    assert code == 130, output
    # It stopped mid-download (at the rate cap the part takes minutes), not after it:
    part = served / "SynthHuman_0000.zip"
    assert served_bytes < part.stat().st_size, output
    assert not (dest / "SynthHuman_0000.zip").exists(), output
    assert "mirror of" in output and "interrupted" in output
    assert "rerun the same command to resume" in output
    assert "Traceback" not in output
    assert wait_gone(workers, 5) == []
    assert (dest / "SynthHuman_0000.zip.state").exists()  # progress checkpointed
    if how == "sigterm":
        return
    # The rerun (the host at full speed now) finishes the part, byte for byte.
    with LocalHost(served) as host:
        cli = start_cli(
            ["mirror", str(dest), "--parts", "0", "--base-url", host.base_url, "--no-progress"],
            prefect_env,
            log,
        )
        assert cli.wait(timeout=120) == 0, log.read_text()
    assert (dest / "SynthHuman_0000.zip").read_bytes() == (
        served / "SynthHuman_0000.zip"
    ).read_bytes()


@pytest.mark.slow
def test_a_temporary_prefect_server_dies_with_its_cli_even_on_sigkill(tmp_path: Path):
    served = served_part(tmp_path / "served", samples=2)
    log = tmp_path / "cli.log"
    env = {**env_without_prefect_api(tmp_path / "prefect-home"), "TMPDIR": str(tmp_path)}
    env["DAVID_DATA_CACHE_DIR"] = str(tmp_path / "cache")
    with LocalHost(served) as host:
        host.faults.add(Fault.rate_cap(50_000), times=None)
        cli = start_cli(
            ["mirror", str(tmp_path / "mirror"), "--parts", "0", "--base-url", host.base_url,
             "--prefect", "--no-progress"],
            env,
            log,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        servers: list[int] = []
        while not servers:
            servers = [p for p in children(cli.pid) if "prefect.server.api.server" in cmdline(p)]
            assert cli.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        while host.stats.total_bytes == 0:  # the server answered and the flow run started
            assert cli.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        cli.kill()  # SIGKILL: no handler, no clean-up code of the CLI runs
        cli.wait()
        assert wait_gone(servers, 10) == [], f"the server outlived its CLI:\n{log.read_text()}"
        assert len(list(tmp_path.glob("david-data-prefect-*"))) == 1  # its home stayed
        # The first server kept its migrated, still empty database for the next ones.
        (template,) = (tmp_path / "cache" / "prefect-server").glob("empty-*.db")
        kept = template.stat()

        # The next run (full speed) starts its own server, finishes, stops the server and
        # removes both servers' homes.
        host.faults.clear()
        cli = start_cli(
            ["mirror", str(tmp_path / "mirror"), "--parts", "0", "--base-url", host.base_url,
             "--prefect", "--no-progress"],
            env,
            log,
        )  # fmt: skip
        seen: set[int] = set()
        while cli.poll() is None:
            seen.update(p for p in children(cli.pid) if "prefect.server.api.server" in cmdline(p))
            time.sleep(0.1)
    assert cli.returncode == 0, log.read_text()
    assert "Finished in state Completed" in log.read_text()
    assert len(seen) == 1 and wait_gone(list(seen), 5) == []
    assert not list(tmp_path.glob("david-data-prefect-*"))
    # ... the second one started on a copy of it (and left it as it was).
    assert (template.stat().st_ino, template.stat().st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
