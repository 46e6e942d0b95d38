"""A source URL resolved once, and a part read by the reader its kind names.

:func:`open_source` looks at the URL once: an ``http(s)://`` URL is the parts on a data
host (:mod:`.http`), anything else a mirror folder, a part zip or an extracted folder
(:mod:`.base`). From then on a part says which reader reads it (:attr:`PartRef.kind`):
:func:`read_files` only looks that reader up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fsspec import AbstractFileSystem

from ..errors import ConfigError
from ..net.http import is_http
from ..net.retry import RetryPolicy
from .base import Source, open_local_source
from .folder import read_folder
from .http import open_remote_source, read_remote
from .parts import PartRef, RawFiles, SampleMembers
from .zip import read_zip

Reader = Callable[..., Iterator[tuple[int, RawFiles]]]
"""``reader(part, samples, *, fs=None, storage_options=None)``, as :func:`read_files`."""

READERS: dict[str, Reader] = {"zip": read_zip, "folder": read_folder, "http": read_remote}
"""The reader of each kind of part."""


def open_source(
    url: str, storage_options: dict[str, Any] | None = None, *, policy: RetryPolicy | None = None
) -> Source:
    """Open a mirror folder, a part zip, an extracted ``SynthHuman/`` folder, or the parts
    on an HTTP host (``policy``: retries of its requests)."""
    if is_http(url):
        return open_remote_source(url, policy=policy)
    return open_local_source(url, storage_options)


def read_files(
    part: PartRef,
    samples: Sequence[SampleMembers],
    *,
    fs: AbstractFileSystem | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[int, RawFiles]]:
    """Yield ``(sample_id, files)`` for located samples of ``part``, in the given order.

    Zip members are fetched in a few large ranged reads and checked against their CRC-32
    (:func:`.zip.read_zip`; from an HTTP host, :func:`.http.read_remote`); a file that
    cannot be read yields its error instead of bytes.
    """
    reader = READERS.get(part.kind)
    if reader is None:
        raise ConfigError(
            f"{part.url}: no reader for parts of kind {part.kind!r}; known: {', '.join(READERS)}"
        )
    yield from reader(part, samples, fs=fs, storage_options=storage_options)
