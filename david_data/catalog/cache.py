"""The catalog cache: one Parquet file per part in the user cache, keyed by version.

Layout (``CACHE`` is :func:`david_data.settings.cache_dir`)::

    CACHE/catalog/<hash of the source URL>/SynthHuman_0003.zip.parquet

Each file's schema metadata records the part's URL, size and version (ETag or
modification time) and the entries that are not sample files; a file is used only when
both match what the source says now, so a changed part is read again. Only confirmed
readings are stored (:func:`.directory.read_part`); format 1 files, written before
readings were confirmed, are ignored. Files are written atomically; an unreadable one
is ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..fsutil import atomic_write_bytes, resolve
from ..settings import cache_dir
from .directory import SCHEMA, PartCatalog
from .remote import PartVersion

logger = logging.getLogger(__name__)

_KEY = b"david_data.catalog"
_FORMAT = 2


def cache_folder(source: str) -> Path:
    """Where the parts of ``source`` (a base URL or mirror folder) are cached."""
    digest = hashlib.sha256(source.rstrip("/").encode()).hexdigest()[:16]
    return cache_dir() / "catalog" / digest


def _path(source: str, name: str) -> Path:
    return cache_folder(source) / f"{name}.parquet"


def load_cached(source: str, name: str, url: str, version: PartVersion) -> PartCatalog | None:
    """The cached catalog of this version of the part, or None."""
    path = _path(source, name)
    if not path.is_file():  # a cold cache: skip loading pyarrow's dataset layer
        return None
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
    if (
        meta.get("format") != _FORMAT
        or meta.get("url") != url
        or meta.get("size") != version.size
        or meta.get("version") != version.version
        or version.version is None
        or not table.schema.equals(SCHEMA, check_metadata=False)
    ):
        return None
    unparsed = meta.get("unparsed", [])
    if not isinstance(unparsed, list) or not all(isinstance(n, str) for n in unparsed):
        return None
    return PartCatalog(
        name=name,
        url=url,
        version=version,
        table=table.replace_schema_metadata(),
        unparsed=tuple(unparsed),
    )


def store_cached(source: str, catalog: PartCatalog) -> None:
    """Cache a freshly read, confirmed part (a read-only cache folder only costs a warning)."""
    meta = {
        "format": _FORMAT,
        "url": catalog.url,
        "size": catalog.version.size,
        "version": catalog.version.version,
        "unparsed": list(catalog.unparsed),
    }
    table = catalog.table.replace_schema_metadata({_KEY: json.dumps(meta).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    path = _path(source, catalog.name)
    try:
        fs, local = resolve(str(path))
        atomic_write_bytes(fs, local, buffer.getvalue())
    except OSError as exc:
        logger.warning("cannot cache the catalog of %s in %s: %s", catalog.name, path, exc)
