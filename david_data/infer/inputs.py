"""List the inputs of a batch inference job and read each one as a BGR image.

Inputs come from one of two kinds of source:

- files: a local folder, file or glob, or any fsspec URL or glob
  (``az://container/photos/**/*.jpg``). A folder is searched recursively for image
  files (by extension); a file or glob takes exactly what it names. Each input gets
  a relative name ``REL/NAME.EXT`` under the *input root* (the folder, the file's
  folder, or the part of a glob before its first wildcard), which names its outputs.
- a converted SynthHuman store: ``open_store(url).query(sql)`` selects samples; input
  ``rgb_0000007.png`` is sample 7's ``rgb`` array (stored RGB, converted to BGR here
  because the models take BGR).

Each input also gets a *key*, a short fingerprint of its identity: size and modification
time or ETag as the listing reports them (a hash of the content where a filesystem lists
neither), or for store samples the SHA-256 of the part they came from. Outputs are
committed under the key (outputs.py), so a replaced input (same name, new content) is
computed again and an unchanged one is not.

``InputSource`` is plain, picklable data; every process (thread pool, Dask worker)
opens its own reader from it with :func:`open_reader`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .. import facts
from ..errors import ConfigError, ImageDecodeError, NoInputsError
from ..fsutil import is_local, resolve, to_url

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".ppm", ".pgm", ".pnm"}
)
"""File extensions a folder listing picks up (case-insensitive). Globs and single files
take whatever they name: a non-image file named explicitly is reported as a failure."""
_GLOB_CHARS = "*?["
_SKIPPED_SUFFIXES = (".tmp", ".staging")
KEY_LEN = 8
"""Hex digits of an input key."""
_VERSION_FIELDS = ("etag", "ETag", "md5", "content_md5", "generation", "version_id")
_TIME_FIELDS = ("mtime", "last_modified", "LastModified", "updated", "modified", "created")


@dataclass(frozen=True, kw_only=True)
class InputSource:
    """Where a job's inputs come from: ``url`` (files) or ``store`` (+ ``query``)."""

    url: str | None = None
    """Local folder, file or glob, or fsspec URL or glob."""
    store: str | None = None
    """URL of a converted SynthHuman store (``--from-store``)."""
    query: str | None = None
    """SQL over the store's ``samples`` table selecting ``sample_id`` (a full ``SELECT``
    or just a ``WHERE`` condition such as ``scenario = 'face'``)."""
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.url is None) == (self.store is None):
            raise ConfigError(
                "give either an input path/URL or --from-store STORE, not both or neither"
            )
        if self.query is not None and self.store is None:
            raise ConfigError("--query selects store samples: it needs --from-store STORE")

    def describe(self) -> str:
        if self.store is not None:
            return f"store {self.store}" + (f" where {self.query}" if self.query else "")
        return str(self.url)

    def absolute(self) -> InputSource:
        """The same source with its path or store as a full URL (or absolute local path),
        so that it means the same on every machine and in every working directory."""
        if self.store is not None:
            return InputSource(
                store=to_url(*resolve(self.store, self.storage_options)),
                query=self.query,
                storage_options=self.storage_options,
            )
        assert self.url is not None
        return InputSource(
            url=to_url(*resolve(self.url, self.storage_options)),
            storage_options=self.storage_options,
        )


@dataclass(frozen=True, kw_only=True)
class InputItem:
    """One input: its relative name and where to read it."""

    rel: str
    """``REL/NAME.EXT`` relative to the input root, ``/``-separated; names the outputs."""
    path: str = ""
    """Path inside the source filesystem (files), empty for store samples."""
    sample_id: int | None = None
    """Sample id (store inputs)."""
    key: str = ""
    """Fingerprint of the input's identity (see the module docstring)."""


@dataclass(frozen=True, kw_only=True)
class InputListing:
    """The inputs of a job, sorted by relative name."""

    root: str
    """URL of the input root (or the store URL)."""
    items: tuple[InputItem, ...]


class InputReader(Protocol):
    def url(self, item: InputItem) -> str: ...
    def read(self, item: InputItem) -> np.ndarray: ...


def _is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def _glob_root(path: str) -> str:
    """The folder part of a glob before its first wildcard component."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if _is_glob(part):
            return "/".join(parts[:i])
    return "/".join(parts[:-1])


def _is_under(path: str, folder: str | None) -> bool:
    return folder is not None and (path == folder or path.startswith(folder.rstrip("/") + "/"))


def _rel(path: str, root: str) -> str:
    return path[len(root) :].lstrip("/") if root else path


def list_inputs(source: InputSource, *, exclude: str | None = None) -> InputListing:
    """List a source's inputs (NoInputsError when there are none). ``exclude`` (a URL)
    drops files under it, e.g. the job's own output folder inside the input folder."""
    if source.store is not None:
        return _list_store(source)
    assert source.url is not None
    fs, path = resolve(source.url, source.storage_options)
    excluded = None
    if exclude is not None:
        ex_fs, ex_path = resolve(exclude, source.storage_options)
        if type(ex_fs) is type(fs):
            excluded = ex_path
    if _is_glob(path):
        root = _glob_root(path)
        found = _glob_files(fs, path)
        nothing = f"no files match {source.url}"
    elif fs.isdir(path):
        root = path
        found = {
            p: info
            for p, info in fs.find(path, detail=True).items()
            if _looks_like_image(p) and not _rel(p, root).startswith(("_runs/", "."))
        }
        nothing = (
            f"no images found under {to_url(fs, root)} (looked recursively for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    elif fs.isfile(path):
        root = path.rsplit("/", 1)[0] if "/" in path else ""
        found = {path: fs.info(path)}
        nothing = f"the only input, {to_url(fs, path)}, lies inside OUTPUT"
    else:
        raise ConfigError(
            f"input {source.url!r} does not exist: give a folder, a file, a glob such as "
            "'photos/**/*.jpg', or --from-store STORE"
        )
    kept = {p: info for p, info in found.items() if not _is_under(p, excluded)}
    if not kept:
        raise NoInputsError(
            f"{nothing}; give a folder holding images, a glob such as 'photos/**/*.jpg', "
            "or --from-store STORE"
        )
    items = sorted(
        (
            InputItem(rel=_rel(p, root), path=p, key=_file_key(fs, p, info))
            for p, info in kept.items()
        ),
        key=lambda item: item.rel,
    )
    logger.info("found %d inputs under %s", len(items), to_url(fs, root) if root else source.url)
    return InputListing(root=to_url(fs, root), items=tuple(items))


def _glob_files(fs: Any, pattern: str) -> dict[str, dict[str, Any]]:
    found = fs.glob(pattern, detail=True)
    return {p: info for p, info in found.items() if info.get("type") != "directory"}


def _key(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:KEY_LEN]


def _file_key(fs: Any, path: str, info: dict[str, Any]) -> str:
    """The key of a listed file: its size and version (ETag) or modification time, as the
    listing reports them; the SHA-256 of its bytes where the listing has neither."""
    stamps = [f"{k}={info[k]}" for k in _VERSION_FIELDS + _TIME_FIELDS if info.get(k) is not None]
    if stamps:
        return _key(f"size={info.get('size')};{stamps[0]}")
    try:
        content = hashlib.sha256(fs.cat_file(path)).hexdigest()
    except OSError:
        content = "unreadable"  # reading it fails again, per item, with the reason
    return _key(f"sha256={content}")


def _looks_like_image(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
        return False
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def store_sample_ids(store: Any, query: str | None) -> list[int]:
    """Sample ids selected by ``query`` (a SELECT, or a WHERE condition), or all of them."""
    if query is None:
        return [int(i) for i in np.asarray(store.sample_ids)]
    sql = (
        query
        if query.lstrip().lower().startswith(("select", "with"))
        else (f"SELECT sample_id FROM samples WHERE {query}")
    )
    table = store.query(sql)
    if "sample_id" not in table.column_names:
        raise ConfigError(
            f"--query must return a sample_id column; {query!r} returned {table.column_names}"
        )
    return sorted({int(i) for i in table.column("sample_id").to_pylist()})


def _list_store(source: InputSource) -> InputListing:
    assert source.store is not None
    from ..store import open_store

    # a fresh store object: the query may read metrics written since this process opened it
    store = open_store(source.store, source.storage_options or None)
    ids = store_sample_ids(store, source.query)
    if not ids:
        raise NoInputsError(
            f"no samples selected in {source.describe()}; check --query "
            "(try it with 'david-data query STORE')"
        )
    table = store.metadata
    parts = dict(
        zip(
            table.column("sample_id").to_pylist(),
            table.column("part_sha256").to_pylist()
            if "part_sha256" in table.column_names
            else [None] * table.num_rows,
            strict=True,
        )
    )
    items = tuple(
        InputItem(rel=facts.member_name("rgb", i), sample_id=i, key=_key(f"part={parts.get(i)}"))
        for i in ids
    )
    logger.info("selected %d samples from %s", len(items), source.describe())
    return InputListing(root=source.store, items=items)


def _options_key(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=str)


@functools.lru_cache(maxsize=8)
def _open_store(url: str, options_key: str) -> Any:
    """One open store per process and URL (readers are reused across batches)."""
    from ..store import open_store

    return open_store(url, storage_options=json.loads(options_key) or None)


class _FileReader:
    def __init__(self, source: InputSource) -> None:
        assert source.url is not None
        self._fs, _ = resolve(source.url, source.storage_options)

    def url(self, item: InputItem) -> str:
        return item.path if is_local(self._fs) else self._fs.unstrip_protocol(item.path)

    def read(self, item: InputItem) -> np.ndarray:
        from .images import decode_image

        try:
            data = self._fs.cat_file(item.path)
        except FileNotFoundError as exc:
            raise ImageDecodeError(
                f"{self.url(item)}: file disappeared before it was read", path=item.rel
            ) from exc
        except OSError as exc:
            raise ImageDecodeError(f"{self.url(item)}: cannot read ({exc})", path=item.rel) from exc
        return decode_image(data, self.url(item))


class _StoreReader:
    def __init__(self, source: InputSource) -> None:
        assert source.store is not None
        self._source = source
        self._store = _open_store(source.store, _options_key(source.storage_options))

    def url(self, item: InputItem) -> str:
        return f"{self._source.store}#sample={item.sample_id}"

    def read(self, item: InputItem) -> np.ndarray:
        assert item.sample_id is not None
        try:
            rgb = self._store.read_batch([item.sample_id], fields=("rgb",))["rgb"][0]
        except Exception as exc:  # a store raises its own typed errors; record them per item
            raise ImageDecodeError(
                f"{self.url(item)}: cannot read sample ({exc})", path=item.rel
            ) from exc
        # The store holds RGB (channel 0 = red); the models take BGR.
        return np.ascontiguousarray(np.asarray(rgb)[..., ::-1])


def open_reader(source: InputSource) -> InputReader:
    """A reader for ``source``'s items (cheap; stores are opened once per process)."""
    return _StoreReader(source) if source.store is not None else _FileReader(source)
