"""URLs, filesystems and atomic writes through fsspec.

Every path the project takes may be a local path or any fsspec URL
(``az://container/prefix``, ``memory://x``). ``storage_options`` are passed at the
boundary, once; adlfs also reads the usual Azure variables
(``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT_NAME``/``_KEY``).

Atomicity: locally a temp file beside the target is renamed into place; on object
stores a single upload of bytes is atomic, and streamed writes go to a staging key
that is promoted (copied) only once complete, so no partial object ever appears
under a final name.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from ._extras import require
from .errors import ConfigError

STAGING_SUFFIX = ".staging"
AZURE_PROTOCOLS = frozenset({"az", "abfs", "abfss", "adl"})
"""fsspec protocols that adlfs (the ``[azure]`` extra) implements."""


def resolve(url: str, storage_options: dict[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """Return the filesystem and the path inside it for a local path or fsspec URL."""
    if not url:
        raise ConfigError("an empty path or URL was given")
    if fsspec.core.split_protocol(url)[0] in AZURE_PROTOCOLS:
        require("azure", f"{url!r}")
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"cannot open {url!r}: {exc}") from exc
    return fs, path.rstrip("/") if path not in ("/", "") else path


def is_local(fs: AbstractFileSystem) -> bool:
    """True when ``fs`` is the local disk."""
    return isinstance(fs, LocalFileSystem)


def join(base: str, *names: str) -> str:
    """Join path components with ``/`` (fsspec paths always use ``/``)."""
    parts = [base.rstrip("/")] + [n.strip("/") for n in names if n]
    return "/".join(parts)


def to_url(fs: AbstractFileSystem, path: str) -> str:
    """The URL of ``path`` in ``fs``, suitable for logs and for reopening."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def refuse_zarr_folder(fs: AbstractFileSystem, root: str, what: str) -> None:
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


def parse_storage_options(items: list[str] | None) -> dict[str, str]:
    """Parse ``key=value`` strings from ``--storage-option`` flags."""
    options: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--storage-option {item!r} must look like key=value, e.g. account_name=myaccount")
        options[key.strip()] = value
    return options


@contextlib.contextmanager
def _local_atomic(path: str) -> Iterator[IO[bytes]]:
    """A temp file beside ``path``, flushed to disk and renamed onto it on success."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
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


def atomic_write_bytes(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    if is_local(fs):
        with _local_atomic(path) as handle:
            handle.write(data)
    else:
        # One PUT: object stores never expose a partly uploaded single-shot blob.
        fs.pipe_file(path, data)


@contextlib.contextmanager
def atomic_open(fs: AbstractFileSystem, path: str) -> Iterator[IO[bytes]]:
    """Open ``path`` for streamed binary writing; it appears only if the block succeeds.

    Locally the data goes to a temp file beside the target and is renamed into place.
    On object stores it goes to ``path + '.<id>.staging'`` and is moved to ``path``
    afterwards (fsspec writers commit even on exceptions, so the final key is never
    written directly).
    """
    if is_local(fs):
        with _local_atomic(path) as handle:
            yield handle
        return
    staging = f"{path}.{uuid.uuid4().hex[:8]}{STAGING_SUFFIX}"
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
