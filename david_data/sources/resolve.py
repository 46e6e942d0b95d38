"""A source URL resolved once, and a part read by the reader its kind names.

:func:`open_source` looks at the URL once: an ``http(s)://`` URL is the parts on a data
host (:mod:`.http`), anything else a mirror folder, a part zip or an extracted folder
(:class:`~.zip.ZipPart`, :class:`~.folder.FolderPart`). From then on a part says which reader reads it (:attr:`PartRef.kind`):
:func:`read_files` only looks that reader up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import ConfigError
from ..fsutil import join, resolve, to_url
from ..net.http import is_http
from ..net.retry import RetryPolicy
from .base import PartSource, Source
from .folder import FolderPart, read_folder
from .http import open_remote_source, read_remote
from .parts import PartRef, RawFiles, SampleMembers
from .zip import ZipPart, read_zip

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


def _apply_manifest(fs: AbstractFileSystem, folder: str, parts: list[PartSource]) -> None:
    """Take part checksums from the mirror manifest (saves rereading whole parts)."""
    try:
        records = json.loads(fs.cat_file(join(folder, "manifest.json")))["parts"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return
    for part in parts:
        record = records.get(part.name) if isinstance(records, dict) else None
        if isinstance(record, dict) and record.get("size") == part.size and record.get("sha256"):
            part.recorded_sha256 = str(record["sha256"])


def open_local_source(url: str, storage_options: dict[str, Any] | None = None) -> Source:
    """Open a mirror folder, a part zip or an extracted ``SynthHuman/`` folder (local or
    fsspec URL)."""
    fs, path = resolve(url, storage_options)
    if not fs.exists(path):
        raise ConfigError(
            f"source {url} does not exist; give a mirror folder ('david-data mirror DEST' "
            "makes one), a part zip or an extracted SynthHuman/ folder"
        )
    if fs.isfile(path):
        if not path.lower().endswith(".zip"):
            raise ConfigError(f"source {url} is a file but not a zip; give a part zip or a folder")
        size = int(fs.size(path))
        part = ZipPart(
            name=path.rsplit("/", 1)[-1], url=to_url(fs, path), fs=fs, path=path, size=size
        )
        return Source(url=url, parts=[part], kind="zip")
    entries = fs.ls(path, detail=True)
    zips = sorted(
        (e for e in entries if e["type"] == "file" and facts.is_part_name(e["name"])),
        key=lambda e: e["name"],
    )
    if zips:
        parts: list[PartSource] = [
            ZipPart(
                name=e["name"].rsplit("/", 1)[-1],
                url=to_url(fs, e["name"]),
                fs=fs,
                path=e["name"],
                size=int(e["size"]),
            )
            for e in zips
        ]
        _apply_manifest(fs, path, parts)
        return Source(url=url, parts=parts, kind="mirror")
    folder = path
    names = {e["name"].rstrip("/").rsplit("/", 1)[-1]: e for e in entries}
    if facts.EXTRACT_FOLDER in names and names[facts.EXTRACT_FOLDER]["type"] == "directory":
        folder = join(path, facts.EXTRACT_FOLDER)
    folder_part = FolderPart(
        name=folder.rsplit("/", 1)[-1], url=to_url(fs, folder), fs=fs, path=folder
    )
    if not folder_part.sample_ids:
        raise ConfigError(
            f"{url} holds neither SynthHuman part zips nor sample files (rgb_0000000.png ...); "
            "give a mirror folder, a part zip or an extracted SynthHuman/ folder"
        )
    return Source(url=url, parts=[folder_part], kind="extracted")
