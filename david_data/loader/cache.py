"""A local cache of whole shard objects for stores on object storage.

::

    CACHE_DIR/
      .locks/00.lock ... ff.lock        flock stripes: one downloader per shard object
      .locks/evict.lock                 one evicting process at a time
      <store key>/rgb/c/12/0/0/0.<version>   a whole shard object, as in the store
      <store key>/rgb/c/12/0/0/.0.<version>.<pid>.<id>.tmp   a download in progress

A shard object is downloaded with one request (``fs.get_file``) into a temp file beside
its final name, flushed to disk and renamed into place, so a name in the cache always
holds a complete object; a crashed download leaves only a temp file, which is never
read and is deleted once its process is gone. Processes and threads sharing the
directory take a file lock (``flock``, striped over 256 lock files that are never
deleted) before downloading, so each object is fetched once however many DataLoader
workers ask for it. After each download the least recently used objects (by mtime,
touched on every use) are deleted until the cache holds at most ``limit`` bytes; the
object just fetched is kept even if it alone exceeds the limit. A deleted object that a
reader still has open stays readable (POSIX), and one deleted before it is opened is
downloaded again.

Each cached object is keyed on its identity, not on its path alone: ``<version>`` hashes
what the store's ``fs.info()`` reports for the object (its size, and its ETag and/or
modification time, and inode where there is one), asked once per object the first time a
process uses it (one ``HEAD`` on object stores and HTTP). A shard rewritten in the store
(a re-conversion, ``convert --retry-errors``, a later selection adding samples to it) so
gets a new version, which is downloaded; the old one is deleted then (and otherwise ages
out under the size limit). A process keeps the version it first saw for as long as it
reads through this cache object, so a shard's index and chunks always come from one
version; after a download the object's identity is asked again, and a store rewritten
during that download is an error asking to rerun, never a mix. Where a store reports
neither ETag nor modification time, the size alone tells versions apart (a warning says
so). The store key hashes the store's URL and creation time, so a store deleted and
converted again at the same URL gets a folder of its own.

A full disk while downloading is an :class:`~david_data.errors.InsufficientSpaceError`
naming the cache folder and ``cache_limit``: keep ``cache_limit`` below the free space
there, or point ``cache_dir`` at a larger disk.

:class:`CachedFileSystem` puts the cache under the store's :class:`ShardReader`: its
ranged reads are served from the local copies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fsspec import AbstractFileSystem

from ..errors import ConfigError, InsufficientSpaceError, StoreError

logger = logging.getLogger(__name__)

DEFAULT_CACHE_LIMIT = 16 * 2**30
"""Bytes the cache may hold (a few shuffle windows of full-size fast-profile shards)."""
LOCK_STRIPES = 256
PREFETCH_THREADS = 2
FETCH_THREADS = 8
"""Concurrent downloads of the objects one batch needs (object stores serve parallel
requests far faster than one after the other)."""


def default_cache_dir() -> Path:
    """The per-user cache folder (``platformdirs``) used when no ``cache_dir`` is given."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("david-data")) / "shards"


def store_key(url: str, created_at: str) -> str:
    """The folder name of one store in the cache."""
    return hashlib.sha256(f"{url}\n{created_at}".encode()).hexdigest()[:16]


IDENTITY_KEYS = ("size", "etag", "ETag", "mtime", "last_modified", "Last-Modified", "ino")
"""The ``fs.info()`` fields that change when an object is rewritten (local disk, adlfs,
s3fs/gcsfs, HTTP)."""
_STAMP_KEYS = frozenset(IDENTITY_KEYS) - {"size", "ino"}


def object_version(info: dict[str, Any]) -> str:
    """A short hash of an object's identity, from its ``fs.info()``."""
    found = {k: str(info[k]) for k in IDENTITY_KEYS if info.get(k) is not None}
    return hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()[:12]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ShardCache:
    """Whole shard objects of one store, copied from ``fs`` under ``cache_dir/<key>/``.

    Picklable: a copy in another process shares the directory (and its locks).
    """

    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        cache_dir: str | os.PathLike[str],
        key: str,
        limit: int,
    ) -> None:
        if limit < 1:
            raise ConfigError(f"cache_limit must be a positive number of bytes, got {limit}")
        self.fs = fs
        self.root = root.rstrip("/")
        self.cache_dir = Path(cache_dir)
        self.folder = self.cache_dir / key
        self.limit = int(limit)
        self._pool: ThreadPoolExecutor | None = None
        self._fetch_pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self._versions: dict[str, tuple[str, int | None]] = {}  # path -> (version, size) here
        self._warned = False

    def __getstate__(self) -> dict[str, Any]:
        return {k: self.__dict__[k] for k in ("fs", "root", "cache_dir", "folder", "limit")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pool, self._fetch_pool, self._pool_pid = None, None, 0
        self._pending, self._pending_lock = set(), threading.Lock()
        self._versions, self._warned = {}, False

    # -- paths and locks -------------------------------------------------------------------
    def _relative(self, path: str) -> str:
        path = path.rstrip("/")
        if not path.startswith(self.root + "/"):
            raise ConfigError(f"{path} is not inside the store {self.root}")
        return path[len(self.root) + 1 :]

    def _identity(self, path: str) -> tuple[str, int | None]:
        """``(version, size)`` of the store object now (FileNotFoundError if absent; size
        None when the store does not say)."""
        self.fs.invalidate_cache(path)  # a listing cached by fsspec may be stale
        info = self.fs.info(path)
        if not self._warned and not _STAMP_KEYS & {k for k, v in info.items() if v is not None}:
            self._warned = True
            logger.warning(
                "the store %s reports no ETag nor modification time for %s: the shard cache "
                "tells rewritten shards apart by their size alone",
                self.root,
                path,
            )
        size = info.get("size")
        return object_version(info), None if size is None else int(size)

    def _version(self, path: str) -> tuple[str, int | None]:
        """The version of ``path`` this process reads (asked once, then kept)."""
        found = self._versions.get(path)
        if found is None:
            found = self._versions[path] = self._identity(path)
        return found

    def local_path(self, path: str) -> Path:
        """Where the store object ``path`` (a path inside ``fs``), in the version this
        process reads, lives in the cache (asks the store for its identity the first time)."""
        relative = self._relative(path)
        version, _ = self._version(path)
        return self.folder / f"{relative}.{version}"

    def _cached(self, path: str) -> bool:
        """Whether ``path``'s version is known here and already in the cache (no request)."""
        found = self._versions.get(path)
        return found is not None and (self.folder / f"{self._relative(path)}.{found[0]}").exists()

    @contextlib.contextmanager
    def _lock(self, name: str, *, blocking: bool = True) -> Iterator[bool]:
        locks = self.cache_dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def _stripe(self, path: str) -> str:
        digest = hashlib.sha256(path.encode()).digest()
        return f"{digest[0] % LOCK_STRIPES:02x}"

    # -- fetching --------------------------------------------------------------------------
    def ensure(self, path: str) -> Path:
        """The local copy of ``path``, downloaded first if absent (FileNotFoundError if the
        store has no such object)."""
        try:
            return self._ensure(path)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._full(path) from exc
            raise

    def _ensure(self, path: str) -> Path:
        dest = self.local_path(path)
        if self._touch(dest):
            return dest
        version, size = self._version(path)
        with self._lock(self._stripe(path)):
            if self._touch(dest):  # another process fetched it while we waited
                return dest
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(path, str(tmp))
                with open(tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
                got = os.path.getsize(tmp)
                if size not in (None, got) or self._identity(path)[0] != version:
                    raise StoreError(
                        f"{path} changed in the store while this job reads it ({size} bytes "
                        f"when first asked, {got} bytes copied now): the store is being "
                        "rewritten; rerun once that is done",
                        path=path,
                    )
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            self._drop_other_versions(dest)
        logger.debug("cached %s (%s bytes)", path, size)
        self.evict(keep=dest)
        return dest

    def _full(self, path: str) -> InsufficientSpaceError:
        size = self._versions.get(path, ("", None))[1]
        return InsufficientSpaceError(
            f"the disk holding the shard cache {self.cache_dir} is full: no room for {path} "
            f"({size} bytes) with cache_limit={self.limit} bytes; free space there, pass a "
            "cache_limit below its free space, or a cache_dir on a larger disk",
            path=path,
            cache_dir=str(self.cache_dir),
        )

    @staticmethod
    def _drop_other_versions(dest: Path) -> None:
        """Delete the cached versions of ``dest``'s object that the store no longer holds."""
        stem = dest.name.rsplit(".", 1)[0] + "."
        with os.scandir(dest.parent) as entries:
            for entry in entries:
                if entry.name.startswith(stem) and entry.name != dest.name:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    @staticmethod
    def _touch(dest: Path) -> bool:
        """Mark ``dest`` as just used; False when it is not in the cache."""
        try:
            os.utime(dest)
        except FileNotFoundError:
            return False
        return True

    def _pools(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        if os.getpid() != self._pool_pid:  # a forked worker must not reuse the parent's threads
            self._pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="shard-prefetch")
            self._fetch_pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="shard-fetch")
            self._pool_pid = os.getpid()
            self._pending = set()
        assert self._pool is not None and self._fetch_pool is not None
        return self._pool, self._fetch_pool

    def forget_versions(self) -> None:
        """Ask each shard's identity again at its next use (a loader does at each
        iteration's start), so a shard rewritten since is downloaded anew."""
        self._versions = {}

    def ensure_all(self, paths: Iterable[str]) -> None:
        """Bring ``paths`` into the cache, downloading the missing ones concurrently (objects
        the store lacks are skipped)."""
        missing = [p for p in dict.fromkeys(paths) if not self._cached(p)]
        if not missing:
            return
        _, pool = self._pools()
        for future in [pool.submit(self.ensure, p) for p in missing]:
            with contextlib.suppress(FileNotFoundError):  # the reader reports what is absent
                future.result()

    def prefetch(self, paths: Iterable[str]) -> None:
        """Start downloading ``paths`` in the background (errors surface on the real read)."""
        pool, _ = self._pools()
        for path in paths:
            with self._pending_lock:
                if path in self._pending or self._cached(path):
                    continue
                self._pending.add(path)
            pool.submit(self._prefetch_one, path)

    def _prefetch_one(self, path: str) -> None:
        try:
            self.ensure(path)
        except Exception as exc:  # the reader fetches it again and raises a proper error
            logger.debug("prefetch of %s failed: %s", path, exc)
        finally:
            with self._pending_lock:
                self._pending.discard(path)

    # -- size limit ------------------------------------------------------------------------
    def evict(self, keep: Path | None = None) -> None:
        """Delete least recently used objects until the cache holds at most ``limit`` bytes,
        and temp files of processes that are gone."""
        with self._lock("evict", blocking=False) as locked:
            if not locked:  # another process is evicting right now
                return
            entries: list[tuple[float, int, str]] = []
            total = 0
            for folder, dirs, files in os.walk(self.cache_dir):
                if folder == str(self.cache_dir):
                    dirs[:] = [d for d in dirs if d != ".locks"]
                for name in files:
                    path = os.path.join(folder, name)
                    try:
                        st = os.stat(path)
                    except FileNotFoundError:
                        continue
                    if name.endswith(".tmp"):
                        if not _pid_alive(_tmp_owner(name)):
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(path)
                            continue
                    else:
                        entries.append((st.st_mtime, st.st_size, path))
                    total += st.st_size
            for _, size, path in sorted(entries):
                if total <= self.limit:
                    break
                if keep is not None and path == str(keep):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                total -= size


def _tmp_owner(name: str) -> int:
    """The process id in a temp file's name (``.<name>.<pid>.<id>.tmp``); 0 if unreadable."""
    parts = name.split(".")
    try:
        return int(parts[-3])
    except (IndexError, ValueError):
        return 0


class CachedFileSystem(AbstractFileSystem):
    """Read-only view of a store's objects through a :class:`ShardCache`: any read of an
    object first brings the whole object into the cache, then is served locally."""

    cachable = False  # one per cache; never shared through fsspec's instance cache
    protocol = "david-data-shard-cache"

    def __init__(self, cache: ShardCache) -> None:
        super().__init__()
        self.cache = cache

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        local = self.cache.ensure(path)
        return {"name": path, "size": local.stat().st_size, "type": "file"}

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            raise ConfigError(
                f"the shard cache is read-only; cannot open {path} with mode {mode!r}"
            )
        for _ in range(3):
            local = self.cache.ensure(path)  # FileNotFoundError: the store has no such object
            try:
                return open(local, "rb")  # noqa: SIM115  (the caller closes it)
            except FileNotFoundError:  # evicted between download and open: fetch it again
                continue
        raise FileNotFoundError(
            f"{path} keeps being evicted from the shard cache before it is read; raise cache_limit"
        )

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        with self._open(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            begin = 0 if start is None else (start if start >= 0 else size + start)
            stop = size if end is None else (end if end >= 0 else size + end)
            handle.seek(begin)
            return bytes(handle.read(max(0, stop - begin)))

    def cat_ranges(
        self,
        paths: list[str],
        starts: list[int] | int | None,
        ends: list[int] | int | None,
        max_gap: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[Any]:
        count = len(paths)
        begins = starts if isinstance(starts, list) else [starts] * count
        stops = ends if isinstance(ends, list) else [ends] * count
        out: list[Any] = []
        for path, start, end in zip(paths, begins, stops, strict=True):
            try:
                out.append(self.cat_file(path, start, end))
            except Exception as exc:
                if on_error != "return":
                    raise
                out.append(exc)
        return out
