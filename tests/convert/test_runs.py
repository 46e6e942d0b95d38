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
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from convert_helpers import FIELDS, SHARD, Mirror, store_content

from david_data.cli import main
from david_data.convert import convert, convert_settings, plan_convert, run_convert
from david_data.engine import make_executor
from david_data.errors import ConfigError
from david_data.store import open_store
from david_data.synth import write_part
from david_data.synth.host import Fault, LocalHost

CLI = [sys.executable, "-m", "david_data"]
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


def wait_until(what: str, done: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    """Poll (the run is in another process) until ``done()``; fail if the run ends first."""
    deadline = time.monotonic() + 240
    while not done():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def test_ctrl_c_stops_at_once_prints_the_summary_and_a_rerun_completes(
    mirror: Mirror,
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The run is paused at a known point, whatever the machine's speed: converting from
    the host, whose every read of the last part's members stalls (for ten minutes), all
    other shards commit and the last part's unit waits for bytes. Ctrl-C then ends the run
    without waiting for it."""
    last = max(mirror.ids)
    held = -(-len(mirror.ids[last]) // SHARD)  # the last part's shards: never committed
    total = committed(store)
    target = tmp_path / "interrupted.zarr"
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))  # (also the CLI's)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # main() below runs the engine here
    env = {**LOCAL_ENV, "DAVID_DATA_CACHE_DIR": str(tmp_path / "cache")}
    with LocalHost(mirror.path) as host:
        ids = ",".join(f"{min(v)}-{max(v)}" for v in mirror.ids.values())  # (no other part)
        args = [host.base_url, str(target), "--ids", ids, "--workers", "2", "--shard-size",
                str(SHARD)]  # fmt: skip
        # The catalogs first (cached), so that no catalog read meets the stall ...
        assert main(["convert", *args, "--dry-run"]) == 0
        # ... and planning's one read of each part (its first sample) passes.
        host.faults.add(Fault.stall(after_bytes=0, seconds=0.01), times=1, path=last)
        stalled = host.faults.add(Fault.stall(after_bytes=0, seconds=600), times=None, path=last)
        proc = subprocess.Popen(
            [*CLI, "convert", *args, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        try:
            wait_until("the other parts' shards", lambda: committed(target) == total - held, proc)
            wait_until("a stalled read of the last part", lambda: stalled.fired > 0, proc)
            asked = stalled.fired
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
            out, err = proc.communicate(timeout=120)  # pipes close once no child holds them
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        # At once: no unit waited out the stall to ask again (the stall timeout is 30 s).
        assert stalled.fired == asked, "the run waited for a stalled read after Ctrl-C"
        assert proc.returncode == 130, out + err
        assert f"{total - held} shards written" in out and "interrupted:" in out, out
        assert "interrupted; rerun the same command to resume" in err and "Traceback" not in err
        assert group_gone(proc.pid), "a process of the command outlived it"
        assert committed(target) == total - held
        host.faults.clear()
        capsys.readouterr()
        assert main(["convert", *args, "--no-progress"]) == 0
    rerun = capsys.readouterr().out
    assert f"{held} shards written, {total - held} already committed" in rerun, rerun
    got, want = store_content(target), store_content(store)
    arrays = [k for k in want if k.split("/")[0] in FIELDS]
    assert arrays and all(got[k] == want[k] for k in arrays)
    ours, theirs = open_store(str(target)).metadata, open_store(str(store)).metadata
    assert ours.drop(["part_sha256"]).equals(theirs.drop(["part_sha256"]))  # (an ETag here)
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


def test_killing_the_dask_workers_mid_run_still_gives_the_same_store(
    mirror: Mirror,
    store: Path,
    tmp_path: Path,
    dask_cluster_factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The kill lands mid-run whatever the machine's speed: converting from the host, every
    read of the last part's members stalls, so its unit is held on a worker while the other
    parts commit. Every worker is killed (so the ones holding it are), a fresh one joins and
    the stall is lifted: the run ends with the same store."""
    last = max(mirror.ids)
    held = -(-len(mirror.ids[last]) // SHARD)
    total = committed(store)
    target = tmp_path / "survivor.zarr"
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))  # (workers' too)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # One worker (of one thread) more than the held units: with only as many, both could
    # hold a stalled unit while Dask had queued (or moved by work stealing) another part's
    # unit behind one of them, and no idle worker would be left to take it.
    cluster = dask_cluster_factory(workers=held + 1)
    env = {**LOCAL_ENV, "DAVID_DATA_CACHE_DIR": str(tmp_path / "cache")}
    with LocalHost(mirror.path) as host:
        ids = ",".join(f"{min(v)}-{max(v)}" for v in mirror.ids.values())
        args = [host.base_url, str(target), "--ids", ids, "--shard-size", str(SHARD)]
        assert main(["convert", *args, "--dry-run"]) == 0  # the catalogs, cached
        host.faults.add(Fault.stall(after_bytes=0, seconds=0.01), times=1, path=last)
        stalled = host.faults.add(Fault.stall(after_bytes=0, seconds=600), times=None, path=last)
        proc = subprocess.Popen(
            [*CLI, "convert", *args, "--no-progress", "--dask-address", cluster.address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            wait_until("the other parts' shards", lambda: committed(target) == total - held, proc)
            wait_until("a stalled read of the last part", lambda: stalled.fired > 0, proc)
            for worker in list(cluster.workers):
                cluster.kill_worker(worker)
            host.faults.clear()
            cluster.add_worker()
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, out + err
    got, want = store_content(target), store_content(store)
    arrays = [k for k in want if k.split("/")[0] in FIELDS]
    assert arrays and all(got[k] == want[k] for k in arrays)
    ours, theirs = open_store(str(target)).metadata, open_store(str(store)).metadata
    assert ours.drop(["part_sha256"]).equals(theirs.drop(["part_sha256"]))  # (an ETag here)
    assert not list(target.rglob("*.tmp"))


def imports(args: list[str], cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run a command in a fresh interpreter: the top-level packages it imported."""
    code = (
        "import sys; from david_data.cli import main; code = main(sys.argv[1:]); "
        "print('LOADED', *sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr); "
        "sys.exit(code)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=LOCAL_ENV,
    )  # fmt: skip
    lines = run.stderr.splitlines(keepends=True)
    loaded = [line.split()[1:] for line in lines if line.startswith("LOADED ")]
    said = "".join(line for line in lines if not line.startswith("LOADED "))
    return set(*loaded[:1]), subprocess.CompletedProcess(run.args, run.returncode, run.stdout, said)


def test_dry_run_and_validation_errors_answer_as_fast_as_query(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    """As fast as ``query``, whatever the machine's speed: they load no package that
    ``query`` does not (but from the standard library): no Prefect, Dask, codecs..."""
    loaded: dict[str, set[str]] = {}
    for label, args, code in (
        ("query", ["query", str(store), "SELECT count(*) FROM samples"], 0),
        ("convert --dry-run", ["convert", str(mirror.path), str(store), "--dry-run"], 0),
        ("convert, missing source", ["convert", str(tmp_path / "nope"), str(store)], 2),
        ("convert, bad --shard-size", ["convert", str(mirror.path), "x", "--shard-size", "7"], 2),
        ("convert, STORE inside SRC", ["convert", str(mirror.path), str(mirror.path / "s")], 2),
    ):
        loaded[label], run = imports(args, tmp_path)
        assert run.returncode == code, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        assert "david_data" in loaded[label] and "prefect" not in loaded[label]
        if code == 2:
            assert run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1
    for label, packages in loaded.items():
        extra = {
            p for p in packages - loaded["query"] - sys.stdlib_module_names
            if not p.startswith("_sysconfigdata")  # (the standard library's, per platform)
        }  # fmt: skip
        assert not extra, f"{label} loads {sorted(extra)}, which query does not"


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
