"""Issue 9 for convert: the same store in-process, on local processes and on a Dask
cluster started from the shell (also when a worker dies), a clean Ctrl-C, and a dry run
or a validation error that answers as fast as ``query``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from convert_helpers import SHARD, Mirror, store_content

from david_data.convert import convert, convert_settings, plan_convert, run_convert
from david_data.engine import make_executor
from david_data.errors import ConfigError
from david_data.store import open_store
from david_data.synth import write_part

CLI = [sys.executable, "-c", "import sys; from david_data.cli import main; sys.exit(main())"]
LOCAL_ENV = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
"""No Prefect server configured: the CLI runs the engine in its own process."""


def same_store(a: Path, b: Path) -> None:
    """Arrays and per-shard metadata files equal bit for bit, and the same metadata rows."""
    assert store_content(a) == store_content(b)
    rows_a: pa.Table = open_store(str(a)).metadata
    assert rows_a.equals(open_store(str(b)).metadata)


def committed(store: Path) -> int:
    return len(list((store / "metadata").glob("shard-*.parquet")))


def wait_for_first_commit(store: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not committed(store):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.02)


def group_gone(pgid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_at_once_prints_the_summary_and_a_rerun_completes(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "interrupted.zarr"
    args = [str(mirror.path), str(target), "--workers", "2", "--shard-size", str(SHARD)]
    proc = subprocess.Popen(
        [*CLI, "convert", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=LOCAL_ENV,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        wait_for_first_commit(target, proc)
        assert committed(target) < committed(store), "the signal must land mid-run"
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=30)  # pipes close once no child holds them
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out + err
    assert elapsed < 10, f"exit took {elapsed:.1f} s"
    assert "shards written" in out and "interrupted:" in out, out
    assert "interrupted; rerun the same command to resume" in err and "Traceback" not in err
    assert group_gone(proc.pid), "a process of the command outlived it"
    assert committed(target) < committed(store)
    report = convert(str(mirror.path), str(target), workers=1)
    assert report.ok, report.summary()
    same_store(target, store)
    assert not list(target.rglob("*.tmp"))  # a worker killed mid-write leaves none for good


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (from /proc: the children of each process)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_main_process_ends_its_workers_and_nothing_is_committed_after(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    """Issue 15 item 8: SIGKILL of the CLI alone (not its group) takes its worker processes
    (and multiprocessing's resource tracker) down with it, so no shard is committed by an
    orphan while a rerun writes the same shards."""
    target = tmp_path / "killed.zarr"
    args = [str(mirror.path), str(target), "--workers", "2", "--shard-size", "1"]
    proc = subprocess.Popen(
        [*CLI, "convert", *args, "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=LOCAL_ENV,
        start_new_session=True,
    )
    try:
        wait_for_first_commit(target, proc)
        children = _descendants(proc.pid)
        assert len(children) >= 2, "the workers run in processes of their own"
        proc.kill()  # the main process only
        proc.wait(timeout=30)
        at_kill = sorted((target / "metadata").glob("shard-*.parquet"))
        deadline = time.monotonic() + 60
        while _alive(children):
            assert time.monotonic() < deadline, f"{_alive(children)} outlived the CLI"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert sorted((target / "metadata").glob("shard-*.parquet")) == at_kill
    assert len(at_kill) < committed(store) * SHARD, "the kill must land mid-run"


def test_two_processes_give_the_same_store(mirror: Mirror, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "two.zarr"
    assert convert(str(mirror.path), str(out), shard_size=SHARD, workers=2).ok
    same_store(out, store)


def test_a_dask_cluster_gives_the_same_store_with_relative_paths(
    mirror: Mirror, store: Path, tmp_path: Path, dask_cluster: str
) -> None:
    client_cwd = tmp_path / "client"
    client_cwd.mkdir()
    source = os.path.relpath(mirror.path, client_cwd)
    run = subprocess.run(
        [*CLI, "convert", source, "dask.zarr", "--shard-size", str(SHARD), "--no-progress",
         "--dask-address", dask_cluster],
        capture_output=True, text=True, timeout=300, cwd=client_cwd, env=LOCAL_ENV,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    same_store(client_cwd / "dask.zarr", store)
    from distributed import Client

    with Client(dask_cluster, timeout=30) as client:
        imported = client.run(lambda: "prefect" in sys.modules)
    assert imported and not any(imported.values()), "a Dask worker imported Prefect"


def test_killing_a_dask_worker_mid_run_still_gives_the_same_store(
    mirror: Mirror, store: Path, tmp_path: Path, dask_cluster_factory
) -> None:  # type: ignore[no-untyped-def]
    cluster = dask_cluster_factory(workers=2)
    target = tmp_path / "survivor.zarr"
    proc = subprocess.Popen(
        [*CLI, "convert", str(mirror.path), str(target), "--shard-size", str(SHARD),
         "--no-progress", "--dask-address", cluster.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=LOCAL_ENV,
    )  # fmt: skip
    try:
        wait_for_first_commit(target, proc)
        assert committed(target) < committed(store), "the kill must land mid-run"
        cluster.kill_worker(cluster.workers[0])
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    same_store(target, store)
    assert not list(target.rglob("*.tmp"))


def timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command in a fresh interpreter; fail if it imported Prefect."""
    code = (
        "import sys; from david_data.cli import main; code = main(sys.argv[1:]); "
        "assert 'prefect' not in sys.modules, 'imported prefect'; sys.exit(code)"
    )
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=LOCAL_ENV,
    )  # fmt: skip
    return time.monotonic() - start, run


def test_dry_run_and_validation_errors_answer_as_fast_as_query(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    seconds: dict[str, float] = {}
    for label, args, code in (
        ("query", ["query", str(store), "SELECT count(*) FROM samples"], 0),
        ("convert --dry-run", ["convert", str(mirror.path), str(store), "--dry-run"], 0),
        ("convert, missing source", ["convert", str(tmp_path / "nope"), str(store)], 2),
        ("convert, bad --shard-size", ["convert", str(mirror.path), "x", "--shard-size", "7"], 2),
        ("convert, STORE inside SRC", ["convert", str(mirror.path), str(mirror.path / "s")], 2),
    ):
        seconds[label], run = timed(args, tmp_path)
        assert run.returncode == code, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        if code == 2:
            assert run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1
    print("\n" + "\n".join(f"  {k:28s} {v:5.2f} s" for k, v in seconds.items()))
    for label, value in seconds.items():
        assert value < 1.5 * seconds["query"] + 1.0, (label, seconds)


def test_paths_the_dask_workers_cannot_see_are_refused_before_any_unit(
    dask_cluster: str,
) -> None:
    # memory:// lives in this process only: exactly what a worker elsewhere cannot see.
    write_part("memory://dd-unseen/SynthHuman_0000.zip", [0])
    plan = plan_convert(convert_settings("memory://dd-unseen", "memory://dd-unseen-store"))
    with (
        pytest.raises(ConfigError, match="cannot see SRC memory:///dd-unseen and STORE"),
        make_executor("processes", 1, dask_address=dask_cluster) as executor,
    ):
        run_convert(plan, executor)
