"""The on-disk layout of a converted store, its creation and its attributes.

::

    STORE/
      zarr.json                       group; attributes["david_data"] = format version,
                                      converter version, profile, shard size, source, created_at,
                                      and for a sparse store its selections
                                      (see :mod:`david_data.convert.sparse`)
      rgb/zarr.json                   (298008, 512, 384, 3) uint8, chunk (1, ...), shard (S, ...)
      rgb/c/K/0/0/0                   shard K: samples K*S ... K*S+S-1
      alpha/ depth/ normal/ intrinsics/   same scheme
      metadata/shard-0000K.parquet    metadata rows of shard K, written LAST: the commit marker
                                      (the folder holds nothing else a ``*.parquet`` glob sees)
      metadata.parquet                every shard's rows in one file, rewritten at the end of
                                      each conversion run (see :mod:`.consolidated`)
      parts/SynthHuman_0003.zip.json  cached SHA-256 of a source part

Arrays are indexed by global sample id; a partial store is sparse (absent chunks read as 0).
Shard objects carry their index at the start (stores written before: at the end; both
read, see :mod:`.shard`). Format 2 ends every chunk with its CRC-32C (Zarr v3's
``crc32c`` codec, see :mod:`.codecs`); format 1 stores have none and still read, and
their consolidated file sits at ``metadata/_consolidated.parquet`` until the next
conversion run moves it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from fsspec import AbstractFileSystem

from .. import facts
from ..errors import ConfigError, StoreError
from ..fsutil import is_local, join, resolve
from .codecs import ARRAYS, ChunkCodec, codec_from_zarr, profile_codecs
from .shard import WRITTEN, ShardIndexFormat, parse_index_format

if TYPE_CHECKING:
    from zarr.core.common import AccessModeLiteral

FORMAT_VERSION = 2
"""1: chunks without a checksum; 2: every chunk ends with its CRC-32C."""
ATTR_KEY = "david_data"
METADATA_DIR = "metadata"
CONSOLIDATED_NAME = "metadata.parquet"
"""The consolidated metadata file, beside ``metadata/`` so that globs over that folder
(DuckDB, Polars, ``pyarrow.dataset``) see each row once."""
LEGACY_CONSOLIDATED = f"{METADATA_DIR}/_consolidated.parquet"
"""Where format 1 stores keep it: read, and removed when a conversion run rewrites it."""
PARTS_DIR = "parts"
DEFAULT_SHARD_SIZE = 100
"""Samples per shard: divides 5000 (shards never straddle the likely part layout),
~110 MB of encoded data per shard in memory while writing (fast profile), ~3,000 shards."""

SAMPLE_SHAPES: dict[str, tuple[int, ...]] = {
    "rgb": (facts.HEIGHT, facts.WIDTH, 3),
    "alpha": (facts.HEIGHT, facts.WIDTH),
    "depth": (facts.HEIGHT, facts.WIDTH),
    "normal": (facts.HEIGHT, facts.WIDTH, 3),
    "intrinsics": (3, 3),
}
FIXED_DTYPES = {"rgb": "uint8", "alpha": "uint8", "intrinsics": "float64"}
DIMENSIONS = {
    "rgb": ("sample", "y", "x", "channel"),
    "alpha": ("sample", "y", "x"),
    "depth": ("sample", "y", "x"),
    "normal": ("sample", "y", "x", "channel"),
    "intrinsics": ("sample", "row", "column"),
}


@dataclass(frozen=True, kw_only=True)
class StoreLayout:
    """What a reader or writer needs to know about a store."""

    url: str
    fs: AbstractFileSystem = field(repr=False, compare=False)
    root: str
    shard_size: int
    profile: str
    dtypes: dict[str, np.dtype]
    codecs: dict[str, ChunkCodec] = field(repr=False)
    shard_index: dict[str, ShardIndexFormat] = field(repr=False)
    """Each array's shard index format: a writer adding shards to a store uses it
    (``encode_shard(chunks, layout.shard_index[name])``), never its own default."""
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)

    def sample_shape(self, name: str) -> tuple[int, ...]:
        return SAMPLE_SHAPES[name]

    def shard_path(self, name: str, shard: int) -> str:
        """Path of one array's shard object (default chunk key encoding, ``/``)."""
        zeros = "/".join("0" for _ in SAMPLE_SHAPES[name])
        return join(self.root, name, "c", str(shard), zeros)

    def metadata_path(self, shard: int) -> str:
        return join(self.root, METADATA_DIR, f"shard-{shard:06d}.parquet")

    @property
    def metadata_dir(self) -> str:
        return join(self.root, METADATA_DIR)

    @property
    def consolidated_path(self) -> str:
        return join(self.root, CONSOLIDATED_NAME)

    @property
    def legacy_consolidated_path(self) -> str:
        return join(self.root, LEGACY_CONSOLIDATED)

    def part_cache_path(self, part: str) -> str:
        return join(self.root, PARTS_DIR, f"{part}.json")

    def committed_shards(self) -> set[int]:
        """Shards whose metadata (the commit marker) exists."""
        folder = join(self.root, METADATA_DIR)
        try:
            names = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return set()
        return {k for k in (shard_of_metadata_name(n) for n in names) if k is not None}


def shard_of_metadata_name(path: str) -> int | None:
    """The shard a ``metadata/shard-NNNNNN.parquet`` path commits; None for other names
    (the consolidated file, temporaries)."""
    base = path.rsplit("/", 1)[-1]
    digits = base[len("shard-") : -len(".parquet")]
    if base.startswith("shard-") and base.endswith(".parquet") and digits.isdigit():
        return int(digits)
    return None


def shard_of(sample_id: int, shard_size: int) -> int:
    return sample_id // shard_size


def _open_group(
    url: str,
    storage_options: dict[str, Any] | None,
    mode: AccessModeLiteral,
    attributes: dict[str, Any] | None = None,
) -> Any:
    import zarr

    fs, path = resolve(url, storage_options)
    if is_local(fs):
        return zarr.open_group(store=path, mode=mode, attributes=attributes)
    return zarr.open_group(
        store=url,
        mode=mode,
        storage_options=storage_options or {},
        attributes=attributes,
    )


def create_store(
    url: str,
    storage_options: dict[str, Any] | None = None,
    *,
    profile: str,
    shard_size: int,
    dtypes: dict[str, np.dtype],
    source: str,
) -> StoreLayout:
    """Create the group and empty arrays, or check an existing store matches.

    The group is written first, with its attributes (so it is recognisably ours), then
    the arrays. Array metadata is only written when absent, so a rerun writes nothing.
    """
    if shard_size < 1 or facts.SAMPLES_PER_PART % shard_size:
        raise ConfigError(
            f"shard size {shard_size} must be a positive divisor of {facts.SAMPLES_PER_PART} "
            "so that shards line up with parts (e.g. 50, 100, 125, 200, 250)"
        )
    existing = _read_attributes(url, storage_options)
    layout: StoreLayout | None = None
    if existing is not None:
        # A store whose arrays are missing was created by a run killed midway: complete it.
        with contextlib.suppress(StoreError):
            layout = open_layout(url, storage_options)
    if layout is not None:
        wanted = {"profile": profile, "shard_size": shard_size}
        found = {"profile": layout.profile, "shard_size": layout.shard_size}
        if wanted != found:
            raise ConfigError(
                f"store {url} was created with {found}, this run asks for {wanted}; "
                "rerun with the store's settings or convert into a new store"
            )
        return layout
    from zarr.errors import ContainsArrayError

    from .. import __version__

    attributes = existing or {
        "format_version": FORMAT_VERSION,
        "converter_version": __version__,
        "profile": profile,
        "shard_size": shard_size,
        "source": source,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    codecs = profile_codecs(profile, dtypes)
    # The group carries its david_data attributes from its first write, so a store whose
    # creation was interrupted is still recognised as ours (and never as a foreign group).
    group = _open_group(url, storage_options, mode="a", attributes={ATTR_KEY: attributes})
    for name in ARRAYS:
        dtype = np.dtype(FIXED_DTYPES.get(name) or dtypes[name])
        shape = SAMPLE_SHAPES[name]
        with contextlib.suppress(ContainsArrayError):  # already there: leave it untouched
            group.create_array(
                name,
                shape=(facts.NUM_SAMPLES, *shape),
                dtype=dtype,
                chunks=(1, *shape),
                shards={"shape": (shard_size, *shape), "index_location": WRITTEN.location},
                fill_value=0,
                dimension_names=DIMENSIONS[name],
                **codecs[name].zarr_codecs(),
            )
    return open_layout(url, storage_options)


def _read_json(fs: AbstractFileSystem, path: str) -> dict[str, Any] | None:
    """A small JSON object; None when the file does not exist."""
    try:
        data = fs.cat_file(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        meta = json.loads(data)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise StoreError(
            f"{path} is not a JSON object ({len(data)} bytes); the store is damaged: "
            "restore it or convert into a new store",
            path=path,
        )
    return meta


def _read_attributes(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    fs, root = resolve(url, storage_options)
    meta = _read_json(fs, join(root, "zarr.json"))
    if meta is None:
        return None
    return (meta.get("attributes") or {}).get(ATTR_KEY)


STORE_ENTRIES = frozenset(
    (*ARRAYS, "zarr.json", METADATA_DIR, CONSOLIDATED_NAME, PARTS_DIR, "runs")
)
"""The names a store keeps at its root: nothing else may write there."""


def store_owning(fs: AbstractFileSystem, path: str) -> str | None:
    """The root of the store when ``path`` is a store's root or lies in one of its own
    entries (:data:`STORE_ENTRIES`), else None (other folders inside a store, such as the
    pipeline's ``_evaluations``, are free)."""
    path = path.rstrip("/")
    parts = path.split("/")
    for depth in range(len(parts), 0, -1):
        folder = "/".join(parts[:depth]) or "/"
        try:
            attrs = _read_attributes_at(fs, folder)
        except StoreError:
            attrs = None
        if attrs is not None:
            inside = parts[depth:]
            return folder if not inside or inside[0] in STORE_ENTRIES else None
    return None


def _read_attributes_at(fs: AbstractFileSystem, root: str) -> dict[str, Any] | None:
    try:
        meta = _read_json(fs, join(root, "zarr.json"))
    except (OSError, ValueError):
        return None
    return None if meta is None else (meta.get("attributes") or {}).get(ATTR_KEY)


def open_layout(url: str, storage_options: dict[str, Any] | None = None) -> StoreLayout:
    """Read a store's attributes and array metadata (no zarr import needed to read)."""
    fs, root = resolve(url, storage_options)
    attrs = _read_attributes(url, storage_options)
    if attrs is None:
        if not fs.exists(root):
            raise StoreError(
                f"store {url} does not exist; give the path or URL of a store written by "
                "'david-data convert SRC STORE'",
                path=url,
            )
        raise StoreError(
            f"{url} is not a david-data store (no zarr.json with david_data attributes); "
            "create one with 'david-data convert SRC STORE'",
            path=url,
        )
    if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
        raise StoreError(
            f"{url} has store format {attrs['format_version']}, newer than this david-data "
            f"reads ({FORMAT_VERSION}); upgrade david-data",
            path=url,
        )
    shard_size = int(attrs["shard_size"])
    dtypes: dict[str, np.dtype] = {}
    codecs: dict[str, ChunkCodec] = {}
    indexes: dict[str, ShardIndexFormat] = {}
    for name in ARRAYS:
        where = join(root, name, "zarr.json")
        meta = _read_json(fs, where)
        if meta is None:
            raise StoreError(f"{url}: array {name} is missing ({where})", path=where)
        dtypes[name], codecs[name], indexes[name] = _parse_array(meta, name, shard_size, where)
    return StoreLayout(
        url=url,
        fs=fs,
        root=root,
        shard_size=shard_size,
        profile=str(attrs["profile"]),
        dtypes=dtypes,
        codecs=codecs,
        shard_index=indexes,
        attributes=dict(attrs),
    )


def _parse_array(
    meta: dict[str, Any],
    name: str,
    shard_size: int,
    where: str,
    shape: tuple[int, ...] | None = None,
) -> tuple[np.dtype, ChunkCodec, ShardIndexFormat]:
    """Dtype, chunk codec and shard index format of one array, checked against the layout
    this reader assumes (one chunk per sample, ``shard_size`` samples per shard; a sample
    of ``shape``, by default the store array's)."""
    shape = SAMPLE_SHAPES[name] if shape is None else shape
    try:
        dtype = np.dtype(meta["data_type"])
        (sharding,) = [c for c in meta["codecs"] if c["name"] == "sharding_indexed"]
        config = sharding["configuration"]
        outer = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        inner = tuple(config["chunk_shape"])
        codec = codec_from_zarr(config["codecs"], where)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"{where}: array metadata is not a sharded array as david-data writes it "
            f"({type(exc).__name__}: {exc}); open this store with zarr.open_group instead",
            path=where,
        ) from exc
    if outer != (shard_size, *shape) or inner != (1, *shape):
        raise StoreError(
            f"{where}: shards {list(outer)} of chunks {list(inner)} do not match the store's "
            f"shard size {shard_size} and sample shape {list(shape)}; the store is damaged",
            path=where,
        )
    return dtype, codec, parse_index_format(config, where)
