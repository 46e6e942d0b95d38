"""``verify`` as an engine job and ``mirror --reverify`` (issue 15, item 6): the same
report on a Dask cluster as in this process, Ctrl-C names the parts left unchecked and
exits 130, and ``--reverify`` re-checks the parts present and fetches only what
``--parts`` names, counting re-checked parts apart from fetched ones."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mirror_helpers import FAST, PARTS, flip_byte, member_data_offset
from process_helpers import interrupt_when

from david_data.mirror import MirrorSettings, mirror
from david_data.synth.host import LocalHost

ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / ".venv" / "bin" / "david-data")


def _env() -> dict[str, str]:
    """No Prefect server and no proxies: the in-process engine, straight to loopback."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.pop("PREFECT_API_URL", None)
    return env


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=300, env=_env(), cwd=cwd
    )


def mirrored(dest: Path, host: LocalHost, count: int) -> Path:
    settings = MirrorSettings(
        dest=str(dest), parts=PARTS[:count], base_url=host.base_url, policy=FAST
    )
    assert not mirror(settings).failed
    return dest


def test_verify_on_a_dask_cluster_gives_the_same_report_as_this_process(
    tmp_path: Path, host: LocalHost, dask_cluster: str
) -> None:
    dest = mirrored(tmp_path / "dest", host, 3)
    flip_byte(dest / PARTS[1], member_data_offset(dest / PARTS[1], "depth_0005000.exr") + 9)
    # verify records what it finds in the manifest: each run gets its own copy.
    shutil.copytree(dest, tmp_path / "client" / "dest")
    local = cli("verify", str(dest))
    assert local.returncode == 1, local.stdout + local.stderr
    assert f"CORRUPT {PARTS[1]}" in local.stdout and "2 good" in local.stdout
    # A relative DEST from the client's folder: the cluster runs elsewhere (its own cwd).
    remote = cli("verify", "dest", "--dask-address", dask_cluster, cwd=tmp_path / "client")
    assert remote.returncode == 1, remote.stdout + remote.stderr
    assert f"Dask cluster {dask_cluster}" in remote.stderr  # it did run there
    assert remote.stdout.replace(str(tmp_path / "client" / "dest"), "DEST") == (
        local.stdout.replace(str(dest), "DEST")
    )


def test_ctrl_c_during_verify_names_the_parts_unchecked_and_exits_130(
    tmp_path: Path, host: LocalHost, dask_cluster_factory: Any
) -> None:
    dest = mirrored(tmp_path / "dest", host, 2)
    cluster = dask_cluster_factory(workers=1)  # one worker, one thread
    # The job pauses at a known point: the cluster's only thread is held until the
    # signal was handled, so no part is checked before it.
    with cluster.busy(tmp_path):
        code, out, err = interrupt_when(
            [CLI, "verify", str(dest), "--no-progress", "--dask-address", cluster.address],
            f"verify {dest}: 2 part(s) on Dask cluster",
            env=_env(),
        )
    assert code == 130, out + err
    assert "0 good, 0 corrupt, 0 missing, 0 unexpected, 2 unchecked" in out, out
    assert f"UNCHECKED (interrupted): {PARTS[0]}, {PARTS[1]}" in out, out
    assert "all good" not in out and "interrupted; rerun" in err
    assert "Traceback" not in err


def test_reverify_rechecks_the_parts_present_and_fetches_only_parts_named(
    tmp_path: Path, host: LocalHost
) -> None:
    dest = mirrored(tmp_path / "dest", host, 2)
    base = ["--base-url", host.base_url, "--no-progress", "--reverify"]

    host.reset_stats()
    run = cli("mirror", str(dest), *base)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 fetched and verified, 2 re-checked intact, 0 already there, 0 failed" in run.stdout
    assert not [r for r in host.stats.requests if r.method == "GET"]  # nothing downloaded
    assert {r.path for r in host.stats.requests} == set(PARTS[:2])  # no other part asked

    # A part the manifest records but DEST lost is named, not fetched.
    (dest / PARTS[1]).unlink()
    host.reset_stats()
    run = cli("mirror", str(dest), *base)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"FAILED {PARTS[1]}: recorded in manifest.json but not at DEST" in run.stdout
    assert "--parts 1" in run.stdout and "1 re-checked intact" in run.stdout
    assert {r.path for r in host.stats.requests} == {PARTS[0]}

    # Parts --parts names are fetched; the present one is re-checked, not counted as fetched.
    host.reset_stats()
    run = cli("mirror", str(dest), *base, "--parts", "0-2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 fetched and verified, 1 re-checked intact, 0 already there" in run.stdout
    assert {r.path for r in host.stats.requests if r.method == "GET"} == set(PARTS[1:3])


def test_the_verify_flow_ends_failed_naming_the_damaged_part(
    prefect_harness: None, tmp_path: Path, host: LocalHost
) -> None:
    from david_data.flows._executor import report_of_state
    from david_data.flows.verify import verify_flow

    dest = mirrored(tmp_path / "dest", host, 2)
    state = verify_flow(dest=str(dest), return_state=True)
    assert state.is_completed() and report_of_state(state).ok
    flip_byte(dest / PARTS[0], member_data_offset(dest / PARTS[0], "rgb_0000001.png") + 5)
    state = verify_flow(dest=str(dest), jobs=1, return_state=True)
    assert state.is_failed()
    report = report_of_state(state)
    assert [v.name for v in report.by_status("corrupt")] == [PARTS[0]], report.summary()
