"""The shard cache on its own: size limit, LRU eviction, temp files of dead processes."""

from __future__ import annotations

import os
import pickle
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from david_data.errors import ConfigError, StoreError
from david_data.loader.cache import ShardCache


@pytest.fixture()
def remote(tmp_path: Path) -> Path:
    """A folder standing in for a store on object storage (read through fsspec)."""
    root = tmp_path / "store"
    for name, fill in (("a", b"a"), ("b", b"b"), ("c", b"c")):
        (root / "rgb" / "c" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "rgb" / "c" / name).write_bytes(fill * 100)
    return root


def cache_of(remote: Path, cache_dir: Path, limit: int) -> ShardCache:
    return ShardCache(LocalFileSystem(), str(remote), cache_dir, "key", limit)


def test_objects_are_copied_whole_under_the_store_key(remote, tmp_path):
    cache = cache_of(remote, tmp_path / "cache", 10_000)
    local = cache.ensure(f"{remote}/rgb/c/a")
    assert local.parent == tmp_path / "cache" / "key" / "rgb" / "c"
    assert local.name.startswith("a.")  # then the object's version
    assert local.read_bytes() == b"a" * 100
    with pytest.raises(FileNotFoundError):
        cache.ensure(f"{remote}/rgb/c/missing")
    assert not [p for p in (tmp_path / "cache").rglob("*.tmp")]
    with pytest.raises(ConfigError, match="not inside"):
        cache.ensure("/elsewhere/x")
    with pytest.raises(ConfigError, match="cache_limit"):
        cache_of(remote, tmp_path / "cache", 0)


def test_eviction_drops_the_least_recently_used_objects_first(remote, tmp_path):
    cache = cache_of(remote, tmp_path / "cache", 250)
    a = cache.ensure(f"{remote}/rgb/c/a")
    b = cache.ensure(f"{remote}/rgb/c/b")
    os.utime(b, (1_000, 1_000))
    os.utime(a, (2_000, 2_000))  # a was used after b
    c = cache.ensure(f"{remote}/rgb/c/c")  # 300 bytes > 250: b goes
    assert a.exists() and c.exists() and not b.exists()
    assert cache.ensure(f"{remote}/rgb/c/b").read_bytes() == b"b" * 100  # fetched again
    sizes = sum(p.stat().st_size for p in (tmp_path / "cache" / "key").rglob("*") if p.is_file())
    assert sizes <= 250


def test_an_object_larger_than_the_limit_is_still_served(remote, tmp_path):
    cache = cache_of(remote, tmp_path / "cache", 1)
    assert cache.ensure(f"{remote}/rgb/c/a").read_bytes() == b"a" * 100
    assert cache.ensure(f"{remote}/rgb/c/b").read_bytes() == b"b" * 100
    assert not list((tmp_path / "cache" / "key" / "rgb" / "c").glob("a.*"))


def test_temp_files_of_dead_processes_are_removed_and_never_read(remote, tmp_path):
    cache = cache_of(remote, tmp_path / "cache", 10_000)
    folder = tmp_path / "cache" / "key" / "rgb" / "c"
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = folder / f".a.{int(dead.stdout)}.0badf00d.tmp"
    orphan.write_bytes(b"half a shard")
    mine = folder / f".b.{os.getpid()}.0badf00d.tmp"  # a download in progress here
    mine.write_bytes(b"in progress")
    assert cache.ensure(f"{remote}/rgb/c/a").read_bytes() == b"a" * 100
    assert not orphan.exists() and mine.exists()


def test_a_cache_pickles_into_another_process(remote, tmp_path):
    cache = cache_of(remote, tmp_path / "cache", 10_000)
    cache.prefetch([f"{remote}/rgb/c/a"])
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.ensure(f"{remote}/rgb/c/c").read_bytes() == b"c" * 100


def rewrite(path: Path, data: bytes) -> None:
    """Replace a store object the way a re-conversion does (temp file, then rename)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_a_rewritten_object_is_fetched_again_not_served_stale(remote, tmp_path):
    cache = cache_of(remote, tmp_path / "cache", 10_000)
    old = cache.ensure(f"{remote}/rgb/c/a")
    assert old.read_bytes() == b"a" * 100
    rewrite(remote / "rgb" / "c" / "a", b"A" * 100)  # same size, new content
    rewrite(remote / "rgb" / "c" / "b", b"b" * 150)  # more samples in the shard
    # a process keeps reading the version it started with (a shard's index and chunks agree)
    assert cache.ensure(f"{remote}/rgb/c/a") == old
    later = cache_of(remote, tmp_path / "cache", 10_000)  # the next job (or epoch's worker)
    assert later.ensure(f"{remote}/rgb/c/a").read_bytes() == b"A" * 100
    assert later.ensure(f"{remote}/rgb/c/b").read_bytes() == b"b" * 150
    assert not old.exists()  # the stale version is gone from the cache
    # the first process cannot get its version any more: an error, never a mix of versions
    with pytest.raises(StoreError, match="changed in the store while this job reads it"):
        cache.ensure(f"{remote}/rgb/c/a")


FILL_DISK = """
import sys
from fsspec.implementations.local import LocalFileSystem
from david_data.loader.cache import ShardCache
remote, cache_dir = sys.argv[1:]
cache = ShardCache(LocalFileSystem(), remote, cache_dir, "key", 2**30)
try:
    cache.ensure(remote + "/rgb/c/big")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_a_full_disk_is_an_error_naming_the_cache_folder_and_its_limit(remote, tmp_path):
    (remote / "rgb" / "c" / "big").write_bytes(b"x" * 2**20)
    cache_dir = tmp_path / "small-disk"
    cache_dir.mkdir()
    # a 256 KiB tmpfs mounted in a private mount namespace (root or a user namespace)
    unshare = shutil.which("unshare")
    command = [sys.executable, "-c", FILL_DISK, str(remote), str(cache_dir)]
    mount = f'mount -t tmpfs -o size=256k tmpfs {shlex.quote(str(cache_dir))} && exec "$@"'
    out = (
        subprocess.run(
            [str(unshare), "-rm", "sh", "-c", mount, "sh", *command],
            capture_output=True,
            text=True,
            check=False,
        )
        if unshare
        else None
    )
    if out is None or "tmpfs" in out.stderr or out.returncode:
        pytest.skip(
            f"cannot mount a small tmpfs here: {out.stderr.strip() if out else 'no unshare'}"
        )
    assert out.stdout.startswith("InsufficientSpaceError "), out.stdout
    assert str(cache_dir) in out.stdout and "cache_limit=1073741824" in out.stdout
    assert not list(cache_dir.rglob("*.tmp"))
