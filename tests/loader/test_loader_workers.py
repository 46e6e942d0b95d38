"""The loader's worker processes (issue 17, goal 1): they persist across epochs and start
with ``fork`` where that is safe; each iteration forgets what the workers learnt of the
shards, so a shard rewritten between epochs is read anew; an iteration stopped midway or
overtaken by a newer one leaves the next exact; they refill their shared-memory slots only
once the main process holds nothing of what a slot held."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the loader needs PyTorch: pip install 'david-data[torch]'")

from loader_helpers import OK_IDS, with_pid  # noqa: E402

from david_data import open_store  # noqa: E402
from david_data.errors import ConfigError  # noqa: E402
from david_data.loader._slots import SLOTS_PER_WORKER, SlotPool  # noqa: E402
from david_data.loader.torch_loader import SLOT_KEY, choose_start_method  # noqa: E402
from david_data.synth.host import LocalHost  # noqa: E402


def real(batches) -> list[int]:
    return [
        i
        for b in batches
        for i, pad in zip(b["sample_id"].tolist(), b["padding"].tolist(), strict=True)
        if not pad
    ]


def forks_here(request: pytest.FixtureRequest) -> bool:
    """Whether a test that forces ``fork`` may run in this process. Forking a process that
    runs other threads (the session's Prefect harness, a Dask client) is unsafe: a worker
    forked there may die at shutdown (exit 1), which is why the loader itself picks spawn
    then. Here the test is run in a fresh interpreter instead; False means it ran there
    and passed."""
    if os.environ.get(_FRESH) or choose_start_method(None, local=True) == "fork":
        return True
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
        cwd=request.config.rootpath,
        env={**os.environ, _FRESH: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-4000:] + run.stderr[-2000:]
    return False


_FRESH = "DAVID_DATA_TEST_FRESH_INTERPRETER"


def test_workers_persist_across_epochs(store_path: Path, request: pytest.FixtureRequest):
    if not forks_here(request):
        return
    store = open_store(str(store_path))
    loader = store.loader(
        4, fields=["intrinsics"], transform=with_pid, num_workers=2, start_method="fork"
    )
    pids = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert sorted(real(batches)) == OK_IDS
        pids.append({int(p) for b in batches for p in b["pid"]})
    assert pids[0] == pids[1] and len(pids[0]) == 2 and os.getpid() not in pids[0]
    assert loader.start_method == "fork"
    loader.close()
    again = {int(p) for b in loader for p in b["pid"]}  # close() ends them; new ones start
    assert again and not again & pids[0]


def test_fork_only_where_it_is_safe():
    assert choose_start_method(None, local=False) == "spawn"  # fsspec/adlfs loops in threads
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # e.g. a Dask client's IO loop
    other.start()
    try:
        assert choose_start_method(None, local=True) == "spawn"
    finally:
        stop.set()
        other.join()
    assert choose_start_method("spawn", local=True) == "spawn"  # asked for: as asked
    with pytest.raises(ConfigError, match="start_method must be one of fork, forkserver, spawn"):
        choose_start_method("thread", local=True)


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("where", ["local", "http"])
def test_a_shard_rewritten_between_epochs_is_read_anew(
    store_path, tmp_path, where, workers, request: pytest.FixtureRequest
):
    if where == "local" and workers and not forks_here(request):
        return
    served = tmp_path / "served"
    shutil.copytree(store_path, served / "store.zarr")
    with LocalHost(served) as host:
        url = host.url("store.zarr") if where == "http" else str(served / "store.zarr")
        store = open_store(url)
        loader = store.loader(
            4,
            shuffle=False,
            fields=["intrinsics"],
            num_workers=workers,
            cache_dir=tmp_path / "c",
            start_method="fork" if where == "local" and workers else None,  # else spawn
        )
        before = {
            i: m
            for b in loader
            for i, m in zip(b["sample_id"].tolist(), b["intrinsics"], strict=True)
        }
        shard0, shard2 = (store.layout.shard_path("intrinsics", k) for k in (0, 2))
        relative = shard0.split("/store.zarr/")[1]
        new = (served / "store.zarr" / shard2.split("/store.zarr/")[1]).read_bytes()
        host.replace(f"store.zarr/{relative}", new)  # a re-conversion rewrote shard 0
        after = {
            i: m
            for b in loader
            for i, m in zip(b["sample_id"].tolist(), b["intrinsics"], strict=True)
        }
        loader.close()
    assert sorted(after) == OK_IDS and not np.array_equal(before[0], after[0])
    assert np.array_equal(after[0], before[20])  # shard 2's values, not the ones read before


def test_a_stopped_or_overtaken_iteration_leaves_the_next_exact(
    store_path: Path, request: pytest.FixtureRequest
):
    if not forks_here(request):
        return
    store = open_store(str(store_path))
    loader = store.loader(4, seed=5, fields=["intrinsics"], num_workers=2, start_method="fork")
    whole = real(store.loader(4, seed=5, fields=["intrinsics"]))
    first = []
    for batch in loader:  # stopped after 2 batches, with more read ahead by the workers
        first.append(batch)
        if len(first) == 2:
            break
    stale = iter(loader)
    assert real([next(stale)]) == whole[8:12]
    newer = iter(loader)  # takes over: the stale iteration yields nothing more
    rest = list(newer)
    assert list(stale) == []
    assert real(first) + whole[8:12] + real(rest) == whole
    loader.close()


TWO_LOADERS = """
import sys
from david_data import open_store
if __name__ == "__main__":
    store = open_store(sys.argv[1])
    for _ in range(2):  # the first one's queue feeder thread stays: it resets at fork
        loader = store.loader(4, num_workers=1, fields=["intrinsics"])
        assert len(list(loader)) == len(loader)
        print(loader.start_method)
"""


def test_a_local_store_forks_in_a_process_running_no_other_thread(store_path, tmp_path):
    script = tmp_path / "two.py"
    script.write_text(TWO_LOADERS, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script), str(store_path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fork", "fork"]


# -- the workers' reusable shared-memory slots (david_data/loader/_slots.py) ---------------
FIELDS = ["rgb", "alpha", "depth", "intrinsics"]


def assert_holds_the_stores_arrays(store, batch) -> None:
    expected = store.read_batch(batch["sample_id"].tolist(), FIELDS)
    for name in FIELDS:
        assert np.array_equal(batch[name].numpy(), expected[name]), name


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_batches_a_user_keeps_are_never_overwritten(
    store_path: Path, method, request: pytest.FixtureRequest
):
    if method == "fork" and not forks_here(request):
        return
    store = open_store(str(store_path))
    loader = store.loader(2, fields=FIELDS, num_workers=2, start_method=method)
    kept = list(loader) + list(loader)  # two epochs, every batch kept: no slot is released
    loader.close()
    assert sorted(real(kept)) == sorted(OK_IDS + OK_IDS)
    for batch in kept:
        assert SLOT_KEY not in batch
        assert_holds_the_stores_arrays(store, batch)


def test_workers_refill_slots_the_main_process_released(
    store_path: Path, request: pytest.FixtureRequest
):
    if not forks_here(request):
        return
    store = open_store(str(store_path))
    loader = store.loader(2, fields=FIELDS, num_workers=2, start_method="fork")
    view = depth = sample = None
    for _epoch in range(2):
        for batch in loader:
            assert_holds_the_stores_arrays(store, batch)
            if view is None:  # a view and a numpy array of the first batch, not the batch
                slot_memory = batch["alpha"].data_ptr()
                batch["alpha"].share_memory_()  # as when sent on to another process: a copy
                assert batch["alpha"].data_ptr() != slot_memory
                sample = int(batch["sample_id"][0])
                view, depth = batch["rgb"][0], batch["depth"][1:].numpy()
                depth_ids = batch["sample_id"][1:].tolist()
        del batch
    released = loader._sampler.slots.released()
    loader.close()
    assert max(released.values()) > 1  # a slot was filled again
    assert np.array_equal(view.numpy(), store.read_batch([sample], ["rgb"])["rgb"][0])
    assert np.array_equal(depth, store.read_batch(depth_ids, ["depth"])["depth"])


def test_a_slot_is_refilled_only_at_the_generation_released():
    torch = pytest.importorskip("torch")
    pool = SlotPool("p")
    taken = [pool.take({}) for _ in range(SLOTS_PER_WORKER)]
    assert taken == list(range(SLOTS_PER_WORKER))
    assert pool.take({}) is None  # none released and the cap reached: fresh memory instead
    assert pool.take({(pool.owner, 2): 0}) is None  # a stale report (an older generation)
    assert pool.take({("another worker", 2): 1}) is None
    assert pool.take({(pool.owner, 2): 1}) == 2 and pool.slots[2].generation == 2
    assert pool.take({(pool.owner, 2): 1}) is None  # generation 2 is not released yet
    pool.abandon(1)  # a failed fill sent nothing: free again
    assert pool.take({}) == 1 and pool.refills == 1
    big = pool.storage(torch, 0, "rgb", 100)
    assert pool.storage(torch, 0, "rgb", 60) is big  # a smaller batch: the same storage
    assert pool.storage(torch, 0, "rgb", 200).nbytes() == 200  # a larger one replaces it
