"""The catalog cache: one file per part in the user cache, keyed by version.

Layout (``CACHE`` is :func:`david_data.settings.cache_dir`)::

    CACHE/catalog/<hash of the source URL>/SynthHuman_0003.zip.parquet   (a table)
    CACHE/catalog/<hash of the source URL>/SynthHuman_0003.zip.json      (plain columns)

A part is cached in the form its reader asked for: the Parquet table when the catalog is
loaded for SQL (``david-data catalog``, ``--where``: reading 60 tables back is quick),
the columns as JSON when it is loaded for a fetch by ids over a few parts (written and
read without pyarrow, which costs a small fetch more than all its requests; see
:data:`david_data.fetch.plan.COLUMNS_PARTS`). Either form serves a
reader of the other when its own is missing; storing one form removes the other.

Each file records the part's URL, size and version (ETag or modification time) and the
entries that are not sample files (in the Parquet schema's metadata, or beside the JSON
columns); a file is used only when both match what the source says now, so a changed
part is read again. Only confirmed readings are stored (:func:`.directory.read_part`);
format 1 files, written before readings were confirmed, are ignored. Files are written
atomically; an unreadable one is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ..fsutil import LocalFiles, atomic_write_bytes
from ..settings import cache_dir
from .directory import COLUMNS, PartCatalog
from .remote import PartVersion

logger = logging.getLogger(__name__)

_KEY = b"david_data.catalog"
_FORMAT = 2


def cache_folder(source: str) -> Path:
    """Where the parts of ``source`` (a base URL or mirror folder) are cached."""
    digest = hashlib.sha256(source.rstrip("/").encode()).hexdigest()[:16]
    return cache_dir() / "catalog" / digest


def _path(source: str, name: str, table: bool) -> Path:
    return cache_folder(source) / f"{name}.{'parquet' if table else 'json'}"


def load_cached(
    source: str, name: str, url: str, version: PartVersion, *, table: bool = True
) -> PartCatalog | None:
    """The cached catalog of this version of the part, or None: the form asked for
    (``table`` True: Parquet, else JSON columns) first, else the other."""
    for form in (table, not table):
        path = _path(source, name, form)
        if not path.is_file():  # a cold cache: skip loading pyarrow's dataset layer
            continue
        found = _load_table(path, url, version) if form else _load_columns(path, url, version)
        if found is not None:
            table_or_columns, unparsed = found
            if form:
                return PartCatalog(
                    name=name, url=url, version=version, table=table_or_columns, unparsed=unparsed
                )
            return PartCatalog(
                name=name, url=url, version=version, columns=table_or_columns, unparsed=unparsed
            )
    return None


def _meta_matches(meta: Any, url: str, version: PartVersion) -> tuple[str, ...] | None:
    """The unparsed entries when ``meta`` describes this version of the part, else None."""
    if (
        not isinstance(meta, dict)
        or meta.get("format") != _FORMAT
        or meta.get("url") != url
        or meta.get("size") != version.size
        or meta.get("version") != version.version
        or version.version is None
    ):
        return None
    unparsed = meta.get("unparsed", [])
    if not isinstance(unparsed, list) or not all(isinstance(n, str) for n in unparsed):
        return None
    return tuple(unparsed)


def _load_table(path: Path, url: str, version: PartVersion) -> tuple[Any, tuple[str, ...]] | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .directory import schema

    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
    unparsed = _meta_matches(meta, url, version)
    if unparsed is None or not table.schema.equals(schema(), check_metadata=False):
        return None
    return table.replace_schema_metadata(), unparsed


def _load_columns(path: Path, url: str, version: PartVersion) -> tuple[Any, tuple[str, ...]] | None:
    try:
        body = json.loads(path.read_bytes())
        unparsed = _meta_matches(body, url, version)
        columns = body["columns"]
        rows = len(columns["sample_id"])
        if (
            unparsed is None
            or list(columns) != list(COLUMNS)
            or not all(isinstance(v, list) and len(v) == rows for v in columns.values())
            or not all(_typed(columns[name], kind) for name, kind in COLUMNS.items())
        ):
            return None
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return columns, unparsed


def _typed(values: list[Any], kind: str) -> bool:
    """True when every value has the column's type (checked at C speed: joining fails
    on anything but strings, a sum of integers is an integer)."""
    try:
        return isinstance("".join(values), str) if kind == "string" else type(sum(values)) is int
    except TypeError:
        return False


def store_cached(source: str, catalog: PartCatalog, *, table: bool = True) -> None:
    """Cache a freshly read, confirmed part, as a Parquet table or (``table`` False) as
    JSON columns, and drop the other form's file (it may hold an older, wrong reading of
    the same version); a read-only cache folder only costs a warning."""
    meta = {
        "format": _FORMAT,
        "url": catalog.url,
        "size": catalog.version.size,
        "version": catalog.version.version,
        "unparsed": list(catalog.unparsed),
    }
    if table:
        import io

        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(
            catalog.table.replace_schema_metadata({_KEY: json.dumps(meta).encode()}), buffer
        )
        data = buffer.getvalue()
    else:
        meta["columns"] = {name: catalog.column(name) for name in COLUMNS}
        data = json.dumps(meta, separators=(",", ":")).encode()
    path = _path(source, catalog.name, table)
    try:
        atomic_write_bytes(LocalFiles(), str(path), data)
        _path(source, catalog.name, not table).unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("cannot cache the catalog of %s in %s: %s", catalog.name, path, exc)
