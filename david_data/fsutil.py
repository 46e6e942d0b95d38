"""URLs, filesystems and atomic writes through fsspec.

Every path the project takes may be a local path or any fsspec URL
(``az://container/prefix``, ``memory://x``). ``storage_options`` are passed at the
boundary, once; adlfs also reads the usual Azure variables
(``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT_NAME``/``_KEY``).

Atomicity: locally a temp file beside the target is renamed into place; on object
stores a single upload of bytes is atomic, and streamed writes go to a staging key
that is promoted (copied) only once complete, so no partial object ever appears
under a final name.

fsspec is imported on first use: a job whose paths are all local (``fetch``, ``mirror`` or
``verify`` with a local DEST) opens them with :func:`open_folder`, which gives a
:class:`LocalFiles` (the few calls it makes, on ``os``) and loads no fsspec.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Protocol

from ._extras import require
from .errors import ConfigError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

STAGING_SUFFIX = ".staging"
AZURE_PROTOCOLS = frozenset({"az", "abfs", "abfss", "adl"})
"""fsspec protocols that adlfs (the ``[azure]`` extra) implements."""


def resolve(url: str, storage_options: dict[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """Return the filesystem and the path inside it for a local path or fsspec URL."""
    if not url:
        raise ConfigError("an empty path or URL was given")
    import fsspec

    if fsspec.core.split_protocol(url)[0] in AZURE_PROTOCOLS:
        require("azure", f"{url!r}")
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"cannot open {url!r}: {exc}") from exc
    return fs, path.rstrip("/") if path not in ("/", "") else path


class Files(Protocol):
    """The calls a job makes on a folder: an fsspec filesystem has them, and so has
    :class:`LocalFiles`."""

    def exists(self, path: str) -> bool: ...
    def isfile(self, path: str) -> bool: ...
    def size(self, path: str) -> int: ...
    def ls(self, path: str, detail: bool = ..., **kwargs: Any) -> Any: ...
    def open(self, path: str, mode: str = ..., **kwargs: Any) -> Any: ...
    def cat_file(self, path: str) -> Any: ...
    def makedirs(self, path: str, exist_ok: bool = ...) -> None: ...
    def rm_file(self, path: str) -> None: ...
    def pipe_file(self, path: str, value: bytes) -> None: ...


class LocalFiles:
    """The local disk, with the fsspec calls of :class:`Files` (same arguments, same
    answers as fsspec's ``LocalFileSystem`` for them) made on ``os``: no fsspec to load."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """``kwargs`` (fsspec's ``refresh``) mean nothing here: nothing is cached."""
        with os.scandir(path) as entries:  # FileNotFoundError as fsspec's
            found = sorted(entries, key=lambda e: e.name)
        if not detail:
            return [e.path for e in found]
        return [
            {
                "name": e.path,
                "size": e.stat().st_size,
                "type": "directory" if e.is_dir() else "file" if e.is_file() else "other",
            }
            for e in found
        ]

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """``kwargs`` (fsspec's ``block_size``, ...) mean nothing for a local file, as in
        fsspec's ``LocalFileSystem``."""
        return open(path, mode)

    def cat_file(self, path: str) -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        os.makedirs(path, exist_ok=exist_ok)

    def rm_file(self, path: str) -> None:
        os.remove(path)

    def pipe_file(self, path: str, value: bytes) -> None:
        with _local_atomic(path) as handle:
            handle.write(value)


def _plain_path(url: str) -> str | None:
    """The local path ``url`` names without fsspec (no protocol, or ``file://``), else None."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif "::" in url or "://" in url:
        return None
    return os.path.abspath(os.path.expanduser(url))


def open_folder(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Files, str]:
    """:func:`resolve` for jobs that only make the :class:`Files` calls: a local path
    (with no storage options) gives :class:`LocalFiles` and loads no fsspec."""
    if not url:
        raise ConfigError("an empty path or URL was given")
    local = None if storage_options else _plain_path(url)
    if local is None:
        return resolve(url, storage_options)
    return LocalFiles(), local.rstrip("/") if local != "/" else local


def is_local(fs: Files | AbstractFileSystem) -> bool:
    """True when ``fs`` is the local disk."""
    if isinstance(fs, LocalFiles):
        return True
    if "fsspec" not in sys.modules:  # no fsspec filesystem can exist yet
        return False
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def join(base: str, *names: str) -> str:
    """Join path components with ``/`` (fsspec paths always use ``/``)."""
    parts = [base.rstrip("/")] + [n.strip("/") for n in names if n]
    return "/".join(parts)


def to_url(fs: Files | AbstractFileSystem, path: str) -> str:
    """The URL of ``path`` in ``fs``, suitable for logs and for reopening."""
    if is_local(fs):
        return path
    url: str = fs.unstrip_protocol(path)  # type: ignore[union-attr]  # fsspec's, not Files'
    return url


def refuse_zarr_folder(fs: Files | AbstractFileSystem, root: str, what: str) -> None:
    """A folder of raw SynthHuman files (a mirror, a fetch, synthetic parts) is never a Zarr
    store: ConfigError when ``root`` holds a ``zarr.json`` (``what`` names the option)."""
    try:
        is_store = fs.isfile(join(root, "zarr.json"))
    except OSError:  # unreachable: the caller's own checks say why
        return
    if is_store:
        raise ConfigError(
            f"{what} {to_url(fs, root)} is a Zarr store (it holds zarr.json), not a folder of "
            "SynthHuman files; give another folder"
        )


def nearest_existing(path: str) -> str:
    """``path`` itself if it exists on the local disk, else its nearest existing ancestor
    (a folder, or a file in the way): where a check of a path not made yet must look."""
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def probe_write(fs: Files | AbstractFileSystem, folder: str) -> None:
    """Make a file in ``folder`` and remove it at once; the OSError if that fails.
    Permission bits alone do not tell whether a write will work (root, a read-only mount,
    ``/proc``, some network file systems): a checked job makes this probe before any work."""
    probe = join(folder, f".david-data-write-test-{temp_token()}")
    if is_local(fs):
        with open(probe, "xb"):
            pass
        os.remove(probe)
    else:
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)


def parse_storage_options(items: list[str] | None) -> dict[str, str]:
    """Parse ``key=value`` strings from ``--storage-option`` flags."""
    options: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--storage-option {item!r} must look like key=value, e.g. account_name=myaccount")
        options[key.strip()] = value
    return options


def temp_token() -> str:
    """Eight random hex digits that make a temp or staging name beside a target unique
    (``uuid4().hex[:8]``'s randomness, without loading ``uuid`` and ``platform``)."""
    return os.urandom(4).hex()


@contextlib.contextmanager
def _local_atomic(path: str) -> Iterator[IO[bytes]]:
    """A temp file beside ``path``, flushed to disk and renamed onto it on success."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.{temp_token()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(fs: Files | AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    if is_local(fs):
        with _local_atomic(path) as handle:
            handle.write(data)
    else:
        # One PUT: object stores never expose a partly uploaded single-shot blob.
        fs.pipe_file(path, data)


@contextlib.contextmanager
def atomic_open(fs: Files | AbstractFileSystem, path: str) -> Iterator[IO[bytes]]:
    """Open ``path`` for streamed binary writing; it appears only if the block succeeds.

    Locally the data goes to a temp file beside the target and is renamed into place.
    On object stores it goes to ``path + '.<id>.staging'`` and is moved to ``path``
    afterwards (fsspec writers commit even on exceptions, so the final key is never
    written directly).
    """
    with _local_atomic(path) if is_local(fs) else _staged(fs, path) as handle:
        yield handle


@contextlib.contextmanager
def _staged(fs: AbstractFileSystem, path: str) -> Iterator[IO[bytes]]:
    """A staging key beside ``path`` in an object store, moved onto it on success."""
    staging = f"{path}.{temp_token()}{STAGING_SUFFIX}"
    try:
        with fs.open(staging, "wb") as handle:
            yield handle
        fs.mv(staging, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(staging)
        raise


def read_bytes(fs: AbstractFileSystem, path: str) -> bytes:
    """Read a whole (small) file."""
    data: bytes = fs.cat_file(path)  # fsspec is untyped
    return data
