"""Ctrl-C or SIGTERM while a job plans over the network (the host stalls): the command ends
at once, exit 130, with one "interrupted" line and no traceback, and leaves no process; a
flow run stopped while it plans ends Failed, "interrupted", never "Crash detected!"."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ops_helpers import children, served_part, start_cli, wait_gone

from david_data.cli import main
from david_data.synth.host import Fault, LocalHost

BOUND_S = 60.0
"""Generous: the fixed code exits in well under a second; the old one waited out stalls."""


@contextlib.contextmanager
def stalled_host(served: Path) -> Iterator[tuple[str, Callable[[], bool]]]:
    """A host whose every GET body stalls; yields its URL and "is a request stalled now"."""
    with LocalHost(served) as host:
        host.faults.add(Fault.stall(after_bytes=0, seconds=600), times=None)
        yield host.base_url, lambda: any("stall" in r.faults for r in host.stats.requests)


@contextlib.contextmanager
def silent_host() -> Iterator[tuple[str, Callable[[], bool]]]:
    """A host that accepts connections and never answers (a HEAD waits for ever)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.1)
        accepted: list[socket.socket] = []

        def waiting() -> bool:
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept()[0])
            return bool(accepted)

        try:
            yield f"http://127.0.0.1:{server.getsockname()[1]}/", waiting
        finally:
            for conn in accepted:
                conn.close()


def _stop_while_waiting(
    cli: subprocess.Popen[bytes], waiting: Callable[[], bool], how: str, log: Path
) -> tuple[int, list[int]]:
    """Wait until the host holds the CLI's request, signal the CLI, and return its exit
    status and the processes it had started (a temporary Prefect server, workers)."""
    deadline = time.monotonic() + 120
    while not waiting():
        assert cli.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    started = children(cli.pid)
    if how == "ctrl-c":
        os.killpg(cli.pid, signal.SIGINT)  # as a terminal sends it
    elif how == "sigterm to a thread":
        _signal_a_thread(cli.pid, signal.SIGTERM)
    else:
        os.kill(cli.pid, signal.SIGTERM)
    try:
        code = cli.wait(timeout=BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()
        pytest.fail(f"still running {BOUND_S:.0f} s after the signal:\n{log.read_text()}")
    return code, started


def _signal_a_thread(pid: int, sig: signal.Signals) -> None:
    """Deliver ``sig`` to a thread of ``pid`` other than its main thread, as the kernel may
    do with a signal sent to the process: Python runs the handler only once the main
    thread runs Python code again, and here it waits on that thread's stalled read."""
    libc = ctypes.CDLL(None, use_errno=True)
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        tid = int(task.name)
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        blocked = int(
            next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
        )
        if tid != pid and not blocked & (1 << (sig - 1)) and libc.tgkill(pid, tid, sig) == 0:
            return
    raise AssertionError(f"no thread of {pid} but the main one takes {sig.name}")


def _assert_interrupted(code: int, output: str) -> None:
    assert code == 130, output
    assert output.count("interrupted; rerun the same command to resume") == 1, output
    assert "Traceback" not in output and "error:" not in output, output
    assert "Crash detected" not in output, output


COMMANDS = {
    "convert URL": lambda url, tmp: ["convert", url, str(tmp / "store.zarr"), "--no-progress"],
    "fetch": lambda url, tmp: [
        "fetch",
        str(tmp / "out"),
        "--base-url",
        url,
        "--parts",
        "0",
        "--no-progress",
    ],
    "catalog": lambda url, tmp: ["catalog", "--base-url", url],
    "verify-store --against URL": lambda url, tmp: [
        "verify-store",
        str(tmp / "store.zarr"),
        "--against",
        url,
        "--no-progress",
    ],  # fmt: skip
    "mirror HEADs": lambda url, tmp: [
        "mirror",
        str(tmp / "mirror"),
        "--base-url",
        url,
        "--parts",
        "0",
        "--no-progress",
    ],  # fmt: skip
}


@pytest.mark.parametrize(
    ("command", "how"),
    [
        ("convert URL", "ctrl-c"),
        ("convert URL", "sigterm"),
        ("fetch", "ctrl-c"),
        ("fetch", "sigterm to a thread"),  # the kernel's choice; the main thread waits
        ("catalog", "ctrl-c"),
        ("verify-store --against URL", "sigterm"),  # a pod stop: exit 130 too
        ("mirror HEADs", "sigterm"),
    ],
)
def test_a_signal_while_a_job_plans_over_a_stalled_host_ends_it_at_once(
    tmp_path: Path, command: str, how: str
):
    served = served_part(tmp_path / "served")
    if command.startswith("verify-store"):
        assert main(["convert", str(served), str(tmp_path / "store.zarr"), "--no-progress"]) == 0
    env = {**os.environ, "DAVID_DATA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "cli.log"
    host = silent_host() if command == "mirror HEADs" else stalled_host(served)
    with host as (url, waiting):
        cli = start_cli(COMMANDS[command](url, tmp_path), env, log)
        code, started = _stop_while_waiting(cli, waiting, how, log)
    _assert_interrupted(code, log.read_text())
    assert wait_gone(started, 5) == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigterm to a thread"])
def test_a_signal_while_a_flow_run_plans_ends_it_failed_interrupted(
    prefect_env: dict[str, str], tmp_path: Path, how: str
):
    """``fetch --prefect`` plans in the flow run (the CLI does not), here on a running
    Prefect server (PREFECT_API_URL set). Prefect's own SIGTERM handling would crash the
    run there; a KeyboardInterrupt would too."""
    served = served_part(tmp_path / "served")
    env = {**prefect_env, "DAVID_DATA_CACHE_DIR": str(tmp_path / "cache")}
    log = tmp_path / "cli.log"
    with stalled_host(served) as (url, waiting):
        cli = start_cli(
            [
                "fetch",
                str(tmp_path / "out"),
                "--base-url",
                url,
                "--parts",
                "0",
                "--no-progress",
                "--prefect",
            ],
            env,
            log,
        )
        code, started = _stop_while_waiting(cli, waiting, how, log)
    output = log.read_text()
    assert wait_gone(started, 5) == []
    _assert_interrupted(code, output)
    assert "Beginning flow run" in output, output
    assert "Finished in state Failed('interrupted" in output, output
