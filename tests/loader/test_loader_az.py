"""The loader over an ``az://`` store on Azurite: whole shards, one request each, through
a shared, crash-safe cache (acceptance 3 of issue 12)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections import Counter

import fsspec
import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the loader needs PyTorch: pip install 'david-data[torch]'"
)

from loader_helpers import OK_IDS  # noqa: E402

from david_data import open_store  # noqa: E402
from david_data.format.codecs import ARRAYS  # noqa: E402
from david_data.loader.batch import make_cache  # noqa: E402

pytestmark = pytest.mark.azurite


def shard_objects(store) -> set[str]:
    """Request paths of every shard object of the store."""
    shards = sorted({int(s) // store.layout.shard_size for s in store.sample_ids})
    return {
        f"/devstoreaccount1/{store.layout.shard_path(name, s)}" for name in ARRAYS for s in shards
    }


def test_a_training_loop_reads_each_shard_once_and_matches_the_local_store(
    az_store, store_path, tmp_path
):
    local = open_store(str(store_path))
    remote = open_store(az_store.url, az_store.storage_options)
    objects = shard_objects(remote)
    assert len(objects) == 5 * 4
    loader = remote.loader(4, seed=2, num_workers=2, cache_dir=tmp_path / "cache")
    proxy = az_store.proxy
    for epoch in range(2):
        proxy.reset()
        loader.set_epoch(epoch)
        seen = []
        for batch in loader:
            expected = local.read_batch(batch["sample_id"].tolist())
            for name in ARRAYS:
                assert np.array_equal(batch[name].numpy(), expected[name]), name
            seen += batch["sample_id"][~batch["padding"]].tolist()
        assert sorted(seen) == OK_IDS
        gets = Counter(r.path for r in proxy.gets(az_store.blob_prefix) if "/c/" in r.path)
        if epoch == 0:
            # one request per shard object, however many samples (35) and workers (2)
            assert set(gets) == objects and set(gets.values()) == {1}, gets
        else:
            assert not gets, "the second epoch is served from the cache"
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert len(cached) == len(objects) and not [p for p in cached if p.name.endswith(".tmp")]


def test_a_small_cache_limit_still_gives_the_right_arrays(az_store, store_path, tmp_path):
    local = open_store(str(store_path))
    remote = open_store(az_store.url, az_store.storage_options)
    loader = remote.loader(6, seed=4, fields=["depth"], cache_dir=tmp_path / "cache", cache_limit=1)
    for batch in loader:
        expected = local.read_batch(batch["sample_id"].tolist(), fields=["depth"])
        assert np.array_equal(batch["depth"].numpy(), expected["depth"])
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert len(cached) < 4  # evicted down to the objects in use, not all 4 depth shards


def test_a_download_killed_midway_is_never_used_nor_blocks_others(az_store, tmp_path):
    remote = open_store(az_store.url, az_store.storage_options)
    path = remote.layout.shard_path("rgb", 2)
    cache_dir = tmp_path / "cache"
    code = (
        "import sys\n"
        "from david_data.format.layout import open_layout\n"
        "from david_data.loader.batch import make_cache\n"
        f"layout = open_layout({az_store.url!r}, {az_store.storage_options!r})\n"
        f"make_cache(layout, {str(cache_dir)!r}, 2**30).ensure({path!r})\n"
    )
    proxy = az_store.proxy
    proxy.reset()
    proxy.slow(f"{path.split('/', 1)[1]}", 10.0)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not proxy.gets(
            path.split("/", 1)[1]
        ):  # the download has started (and holds the lock)
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    finally:
        proxy.slow(None)
    cache = make_cache(remote.layout, cache_dir, 2**30)
    final = cache.local_path(path)
    assert not final.exists()
    # had it died while writing, its temp file would look like this one: never read, removed
    final.parent.mkdir(parents=True, exist_ok=True)
    orphan = final.parent / f".{final.name}.{proc.pid}.0badf00d.tmp"
    orphan.write_bytes(b"half a shard")
    locks = sorted((cache_dir / ".locks").glob("*.lock"))
    assert locks  # the dead process took its shard's lock ...
    for lock in locks:  # ... and the lock went with it: no flock is held now
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if held
        finally:
            os.close(fd)
    data = cache.ensure(path).read_bytes()
    fs = fsspec.filesystem("az", **az_store.storage_options, skip_instance_cache=True)
    assert data == fs.cat_file(path)
    assert not orphan.exists()
