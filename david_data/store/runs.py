"""Runs: a model's predictions and their metrics inside a store, beside the ground truth.

::

    STORE/
      runs/zarr.json                  group
      runs/<run>/zarr.json            group
      runs/<run>/depth/ normal/ foreground/
                                      Zarr v3 arrays (298008, 512, 384[, 3]) float32, indexed by
                                      sample id like the store's own arrays: chunk (1, ...),
                                      shard (S, ...), the ``fast`` codecs + crc32c, fill NaN
      runs/<run>/covered/             Zarr v3 bool array (298008,), one chunk per shard
                                      (zstd + crc32c): which samples the run holds. Chunk K is
                                      written LAST when shard K of the predictions is: the
                                      commit marker (a sample is covered only once every
                                      field of it is on disk)
      runs/<run>/metrics/shard-00000K.parquet
                                      per-sample metrics of shard K (``run``, ``sample_id``,
                                      then :data:`~david_data.infer.metrics.METRIC_NAMES`)
      runs/<run>/run.json             :class:`RunInfo`, written when the run is created, after
                                      its arrays and before any prediction

A run is never overwritten by another model: :func:`create_run` refuses a name whose
``run.json`` records another SHA-256 (or other tasks). The same model over another
selection adds to the run (``run.json`` lists that selection under ``more``). :func:`write_predictions` writes whole shard objects
(one writer per shard, like ``convert``), merging what the shard already holds, so rerunning
the same ids is idempotent and a killed write leaves the previous commit in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pyarrow as pa

from .. import facts
from ..errors import ConfigError, StoreError
from ..format.codecs import Checksummed, ChunkCodec, ZstdBytes, profile_codecs
from ..format.layout import (
    SAMPLE_SHAPES,
    StoreLayout,
    _parse_array,
    _read_json,
    open_layout,
)
from ..format.reader import ShardReader
from ..format.shard import EMPTY, WRITTEN, shard_buffers
from ..fsutil import atomic_write_bytes, is_local, join, to_url

__all__ = [
    "FIELDS",
    "RUNS_DIR",
    "RunInfo",
    "RunView",
    "check_run",
    "check_run_name",
    "create_run",
    "list_runs",
    "metrics_schema",
    "read_metrics",
    "write_metrics",
    "write_predictions",
    "write_shard_chunks",
]

RUNS_DIR = "runs"
INFO_NAME = "run.json"
COVERED = "covered"
METRICS_DIR = "metrics"
FIELDS = ("depth", "normal", "foreground")
"""Predicted fields, in the order of the multi-task model's outputs."""
FIELD_SHAPES: dict[str, tuple[int, ...]] = {
    "depth": SAMPLE_SHAPES["depth"],
    "normal": SAMPLE_SHAPES["normal"],
    "foreground": (facts.HEIGHT, facts.WIDTH),
}
DIMENSIONS = {
    "depth": ("sample", "y", "x"),
    "normal": ("sample", "y", "x", "channel"),
    "foreground": ("sample", "y", "x"),
}
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_COVERED_CODEC: ChunkCodec = Checksummed(inner=ZstdBytes(level=1))


@dataclass(frozen=True)
class RunInfo:
    """What a run records about itself (``runs/<run>/run.json``)."""

    name: str
    model: str
    """Model name (registry name or file name)."""
    model_sha256: str
    tasks: tuple[str, ...]
    """Subset of :data:`FIELDS`: the run's arrays."""
    created: str
    """ISO 8601 UTC."""
    selection: dict[str, Any] = field(default_factory=lambda: {"query": None, "ids": None})
    """``{"query": str | None, "ids": str | None}``: the samples asked for."""
    version: str = ""
    """david-data version that wrote it."""
    more: tuple[dict[str, Any], ...] = ()
    """Selections run into this run after the first (same model, other samples)."""

    def __post_init__(self) -> None:
        check_run_name(self.name)
        object.__setattr__(self, "tasks", tuple(self.tasks))
        unknown = [t for t in self.tasks if t not in FIELDS]
        if unknown or not self.tasks:
            raise ConfigError(
                f"run {self.name!r}: tasks {list(self.tasks)} must be some of {', '.join(FIELDS)}"
            )
        selection = {"query": None, "ids": None, **(self.selection or {})}
        object.__setattr__(self, "selection", selection)
        more = tuple({"query": None, "ids": None, **m} for m in self.more)
        object.__setattr__(self, "more", more)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        data["more"] = list(self.more)
        return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | Mapping[str, Any], where: str = "run.json") -> RunInfo:
        try:
            raw = json.loads(data) if isinstance(data, bytes | str) else dict(data)
            return cls(
                name=raw["name"],
                model=raw["model"],
                model_sha256=raw["model_sha256"],
                tasks=tuple(raw["tasks"]),
                created=raw["created"],
                selection=dict(raw.get("selection") or {}),
                version=str(raw.get("version", "")),
                more=tuple(raw.get("more") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"{where} is not a run description ({type(exc).__name__}: {exc}); the run is "
                "damaged: delete its folder and run it again",
                path=where,
            ) from exc

    @classmethod
    def now(
        cls,
        name: str,
        *,
        model: str,
        model_sha256: str,
        tasks: Iterable[str],
        query: str | None = None,
        ids: str | None = None,
    ) -> RunInfo:
        """A new run's description, dated now, for this david-data version."""
        from .. import __version__

        return cls(
            name=name,
            model=model,
            model_sha256=model_sha256,
            tasks=tuple(tasks),
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            selection={"query": query, "ids": ids},
            version=__version__,
        )


def check_run_name(name: str) -> str:
    """``name`` if it is a valid run name, else a ConfigError saying the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"run name {name!r} is not valid: use 1-64 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit (e.g. depth-base)"
        )
    return name


# -- layout ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunLayout(StoreLayout):
    """A run's arrays, laid out as a store's (so the store's shard reader reads them)."""

    info: RunInfo
    store_root: str
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def sample_shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def shard_path(self, name: str, shard: int) -> str:
        zeros = "/".join("0" for _ in self.shapes[name])
        return join(self.root, name, "c", str(shard), zeros)

    def covered_path(self, shard: int) -> str:
        return join(self.root, COVERED, "c", str(shard))

    def metrics_path(self, shard: int) -> str:
        return join(self.root, METRICS_DIR, f"shard-{shard:06d}.parquet")

    @property
    def fields(self) -> tuple[str, ...]:
        return self.info.tasks


def _runs_root(store: StoreLayout) -> str:
    return join(store.root, RUNS_DIR)


def _read_info(store: StoreLayout, name: str) -> RunInfo | None:
    where = join(_runs_root(store), name, INFO_NAME)
    try:
        data = store.fs.cat_file(where)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return RunInfo.from_json(data, where)


def list_runs(store: StoreLayout) -> list[RunInfo]:
    """Every run of a store (those with a ``run.json``), sorted by name."""
    try:
        store.fs.invalidate_cache(_runs_root(store))
        entries = store.fs.ls(_runs_root(store), detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in sorted(entries):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if _NAME.fullmatch(name):
            info = _read_info(store, name)
            if info is not None:
                found.append(info)
    return found


def unknown_run(store: StoreLayout, name: str) -> StoreError:
    names = [r.name for r in list_runs(store)]
    there = f"runs there: {', '.join(names)}" if names else "it has no runs yet"
    return StoreError(
        f"store {to_url(store.fs, store.root)} has no run {name!r} ({there}); write one with "
        "'david-data infer --from-store STORE --model M'",
        path=join(_runs_root(store), name),
    )


def open_run(store: StoreLayout, name: str) -> RunLayout:
    """A run's layout, read from its ``run.json`` and its arrays' ``zarr.json``."""
    check_run_name(name)
    info = _read_info(store, name)
    if info is None:
        raise unknown_run(store, name)
    root = join(_runs_root(store), name)
    dtypes: dict[str, np.dtype] = {}
    codecs: dict[str, ChunkCodec] = {}
    indexes = {}
    for f in info.tasks:
        where = join(root, f, "zarr.json")
        meta = _read_json(store.fs, where)
        if meta is None:
            raise StoreError(f"run {name}: array {f} is missing ({where})", path=where)
        dtypes[f], codecs[f], indexes[f] = _parse_array(
            meta, f, store.shard_size, where, FIELD_SHAPES[f]
        )
    return RunLayout(
        url=join(store.url, RUNS_DIR, name),
        fs=store.fs,
        root=root,
        shard_size=store.shard_size,
        profile="fast",
        dtypes=dtypes,
        codecs=codecs,
        shard_index=indexes,
        attributes={},
        info=info,
        store_root=store.root,
        shapes={f: FIELD_SHAPES[f] for f in info.tasks},
    )


# -- creating a run ---------------------------------------------------------------------------


def create_run(
    store_url: str, info: RunInfo, storage_options: dict[str, Any] | None = None
) -> None:
    """Create ``runs/<name>`` (arrays, then ``run.json``), or check that the run there was
    made by the same model for the same tasks (StoreError naming both otherwise); a new
    selection is recorded in its ``run.json`` (``more``), the same one writes nothing."""
    store = open_layout(store_url, storage_options)
    existing = check_run(store, info)
    if existing is not None:
        if info.selection != existing.selection and info.selection not in existing.more:
            # The same model over other samples: its predictions join the run (a sample's
            # prediction does not depend on the selection); run.json records the selection.
            more = dataclasses.replace(existing, more=(*existing.more, info.selection))
            atomic_write_bytes(
                store.fs, join(_runs_root(store), info.name, INFO_NAME), more.to_json()
            )
        return
    from zarr.errors import ContainsArrayError

    from ..format.layout import _open_group

    root = _open_group(store_url, storage_options, mode="r+")
    group = root.require_group(RUNS_DIR).require_group(info.name)
    codecs = profile_codecs("fast", {f: np.dtype("float32") for f in ("depth", "normal")})
    for f in info.tasks:
        shape = FIELD_SHAPES[f]
        codec = codecs["normal" if f == "normal" else "depth"]
        with contextlib.suppress(ContainsArrayError):
            group.create_array(
                f,
                shape=(facts.NUM_SAMPLES, *shape),
                dtype="float32",
                chunks=(1, *shape),
                shards={"shape": (store.shard_size, *shape), "index_location": WRITTEN.location},
                fill_value=float("nan"),
                dimension_names=DIMENSIONS[f],
                **codec.zarr_codecs(),
            )
    with contextlib.suppress(ContainsArrayError):
        group.create_array(
            COVERED,
            shape=(facts.NUM_SAMPLES,),
            dtype="bool",
            chunks=(store.shard_size,),
            fill_value=False,
            dimension_names=("sample",),
            **_COVERED_CODEC.zarr_codecs(),
        )
    atomic_write_bytes(store.fs, join(_runs_root(store), info.name, INFO_NAME), info.to_json())


def check_run(store: StoreLayout, wanted: RunInfo) -> RunInfo | None:
    """The run of ``wanted``'s name already in the store (None when there is none); a
    StoreError naming both when it holds another model's predictions or other tasks."""
    name = wanted.name
    existing = _read_info(store, name)
    if existing is None:
        return None
    if existing.model_sha256 != wanted.model_sha256:
        raise StoreError(
            f"run {name!r} in {store.url} holds predictions of {existing.model} (SHA-256 "
            f"{existing.model_sha256[:12]}...), not of {wanted.model} (SHA-256 "
            f"{wanted.model_sha256[:12]}...); a run is never overwritten: give another --run name",
            path=join(_runs_root(store), name),
        )
    if tuple(existing.tasks) != tuple(wanted.tasks):
        raise StoreError(
            f"run {name!r} in {store.url} holds {', '.join(existing.tasks)}, not "
            f"{', '.join(wanted.tasks)}; give another --run name",
            path=join(_runs_root(store), name),
        )
    return existing


# -- predictions ----------------------------------------------------------------------------


def _shard_groups(ids: np.ndarray, shard_size: int) -> dict[int, np.ndarray]:
    """Positions in ``ids`` grouped by shard."""
    shards = ids // shard_size
    return {int(k): np.flatnonzero(shards == k) for k in np.unique(shards)}


class RunView:
    """Reads one run: its covered mask per shard and its arrays (through the store's
    shard reader). Covered chunks and shard indexes are cached together, the covered
    chunk first, so a view opened while a writer adds shards never pairs a newer
    covered chunk with an older index."""

    def __init__(self, layout: RunLayout) -> None:
        self.layout = layout
        self.reader = _RunReader(layout)
        self._covered: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def info(self) -> RunInfo:
        return self.layout.info

    def covered_shard(self, shard: int, *, cached: bool = True) -> np.ndarray:
        """Bool mask (shard_size,) of the samples of ``shard`` the run holds."""
        if cached and shard in self._covered:
            return self._covered[shard]
        mask = _read_covered(self.layout, shard)
        if cached:
            with self._lock:
                self._covered[shard] = mask
        return mask

    def covered(self, sample_ids: Iterable[int]) -> np.ndarray:
        """Bool per sample id: does the run hold it."""
        ids = np.asarray(list(sample_ids), dtype=np.int64)
        size = self.layout.shard_size
        out = np.zeros(ids.size, dtype=bool)
        for shard, where in _shard_groups(ids, size).items():
            out[where] = self.covered_shard(shard)[ids[where] - shard * size]
        return out

    def all_covered(self) -> np.ndarray:
        """Ids of every sample the run holds, ascending (read fresh)."""
        found = []
        for shard in sorted(_covered_shards(self.layout)):
            mask = _read_covered(self.layout, shard)
            found.append(np.flatnonzero(mask).astype(np.int64) + shard * self.layout.shard_size)
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def read(self, sample_ids: Iterable[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each field stacked (N, ...) float32, NaN where the run does not hold the sample,
        and the covered mask (N,)."""
        ids = [int(s) for s in sample_ids]
        covered = self.covered(ids)
        held = [s for s, c in zip(ids, covered, strict=True) if c]
        results = self.reader.read(held, self.layout.fields)
        out = {
            f: np.full((len(ids), *self.layout.shapes[f]), np.nan, dtype=np.float32)
            for f in self.layout.fields
        }
        rows = iter(np.flatnonzero(covered))
        for sid, arrays in zip(held, results, strict=True):
            i = next(rows)
            if arrays is None:
                raise StoreError(
                    f"run {self.info.name}: sample {sid} is marked covered but its chunks are "
                    f"missing; the run is damaged: delete "
                    f"{self.layout.covered_path(sid // self.layout.shard_size)} and run it again",
                    path=self.layout.root,
                    sample_id=sid,
                )
            for f in self.layout.fields:
                out[f][i] = arrays[f]
        return out, covered


class _RunReader(ShardReader):
    """The store's shard reader over a run's arrays; damage names the run's fix."""

    def _fix(self, shard: int) -> str:
        layout = self.layout
        assert isinstance(layout, RunLayout)
        return (
            f"delete {layout.covered_path(shard)} and rerun the run {layout.info.name!r} "
            "('david-data infer --from-store STORE --run NAME') to rewrite that shard"
        )


def _read_covered(layout: RunLayout, shard: int) -> np.ndarray:
    path = layout.covered_path(shard)
    try:
        data = layout.fs.cat_file(path)
    except FileNotFoundError:
        return np.zeros(layout.shard_size, dtype=bool)
    try:
        return _COVERED_CODEC.decode(data, np.dtype(bool), (layout.shard_size,))
    except Exception as exc:
        raise StoreError(
            f"{path}: the covered mask of run {layout.info.name} shard {shard} does not "
            f"decode ({type(exc).__name__}: {exc}); delete it and run the run again",
            path=path,
        ) from exc


def _covered_shards(layout: RunLayout) -> list[int]:
    try:
        folder = join(layout.root, COVERED, "c")
        layout.fs.invalidate_cache(folder)  # a listing fsspec cached may be stale
        names = layout.fs.ls(folder, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    base = [n.rstrip("/").rsplit("/", 1)[-1] for n in names]
    return sorted(int(b) for b in base if b.isdigit())


def write_predictions(
    store_url: str,
    run: str,
    sample_ids: Iterable[int],
    arrays: Mapping[str, np.ndarray],
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write predictions of ``sample_ids`` (each field (N, ...) in ``arrays``, one per task
    of the run) and mark them covered, shard by shard: each shard's objects are rewritten
    whole (with what the shard already held), atomically, then its covered chunk, the
    commit marker. Writing the same ids again is idempotent. One writer per shard."""
    store = open_layout(store_url, storage_options)
    layout = open_run(store, run)
    ids = np.asarray(list(sample_ids), dtype=np.int64)
    if ids.size != np.unique(ids).size:
        raise ConfigError(f"run {run}: sample ids to write repeat themselves")
    if ids.size and (ids.min() < 0 or ids.max() >= facts.NUM_SAMPLES):
        raise ConfigError(f"run {run}: sample ids must lie in 0 ... {facts.NUM_SAMPLES - 1}")
    missing = [f for f in layout.fields if f not in arrays]
    extra = [f for f in arrays if f not in layout.fields]
    if missing or extra:
        raise ConfigError(
            f"run {run} holds {', '.join(layout.fields)}; got arrays for "
            f"{', '.join(arrays) or 'nothing'}"
        )
    for f in layout.fields:
        want = (ids.size, *layout.shapes[f])
        if tuple(np.shape(arrays[f])) != want:
            raise ConfigError(
                f"run {run}: {f} predictions have shape {tuple(np.shape(arrays[f]))}, "
                f"expected {want}"
            )
    for shard, where in sorted(_shard_groups(ids, layout.shard_size).items()):
        _write_shard(layout, shard, ids[where], {f: arrays[f][where] for f in layout.fields})


def _write_shard(
    layout: RunLayout, shard: int, ids: np.ndarray, arrays: dict[str, np.ndarray]
) -> None:
    encoded = {
        f: {
            int(sid): layout.codecs[f].encode(np.ascontiguousarray(a, dtype=np.float32))
            for sid, a in zip(ids.tolist(), arrays[f], strict=True)
        }
        for f in layout.fields
    }
    write_shard_chunks(layout, shard, encoded)


def write_shard_chunks(
    layout: RunLayout, shard: int, encoded: Mapping[str, Mapping[int, bytes | memoryview]]
) -> None:
    """Commit encoded chunks (``field -> sample id -> bytes``, the same ids for every field,
    all in ``shard``) into the run: each field's shard object rewritten whole with what it
    held, atomically, then the shard's covered chunk (the commit marker). The caller is
    the shard's only writer."""
    from ..format.objects import remove_stale_temporaries, write_shard_object

    size = layout.shard_size
    base = shard * size
    ids = sorted(encoded[layout.fields[0]])
    if any(sorted(encoded[f]) != ids for f in layout.fields):
        raise ConfigError(f"run {layout.info.name}: every field needs the same sample ids")
    if any(s // size != shard for s in ids):
        raise ConfigError(f"run {layout.info.name}: sample ids outside shard {shard}")
    covered = _read_covered(layout, shard).copy()
    new = set(ids)
    keep = [int(s) for s in np.flatnonzero(covered) + base if int(s) not in new]
    old = _raw_chunks(layout, shard, keep)
    marker = layout.covered_path(shard)
    remove_stale_temporaries(
        layout, [layout.shard_path(f, shard) for f in layout.fields] + [marker]
    )
    for f in layout.fields:
        chunks: list[bytes | memoryview | None] = [None] * size
        for sid, data in {**old[f], **encoded[f]}.items():
            chunks[sid - base] = data
        # memoryviews (a spooled shard) are written as they are, like bytes
        buffers = shard_buffers(cast(list[bytes | None], chunks), layout.shard_index[f])
        write_shard_object(layout, layout.shard_path(f, shard), buffers)
        del chunks, buffers
    covered[np.asarray(ids, dtype=np.int64) - base] = True
    atomic_write_bytes(layout.fs, marker, _COVERED_CODEC.encode(covered))


def _raw_chunks(layout: RunLayout, shard: int, ids: list[int]) -> dict[str, dict[int, bytes]]:
    """The encoded chunks a shard already holds for ``ids`` (copied as they are)."""
    out: dict[str, dict[int, bytes]] = {f: {} for f in layout.fields}
    if not ids:
        return out
    reader = ShardReader(layout)
    indexes = reader.indexes([(f, shard) for f in layout.fields])
    for f in layout.fields:
        index = indexes[(f, shard)]
        path = layout.shard_path(f, shard)
        ranges = []
        for sid in ids:
            if index is None or index[sid % layout.shard_size, 0] == EMPTY:
                raise StoreError(
                    f"run {layout.info.name}: sample {sid} is marked covered but {path} lacks "
                    f"its {f} chunk; delete {layout.covered_path(shard)} and run it again",
                    path=path,
                )
            offset, nbytes = (int(v) for v in index[sid % layout.shard_size])
            ranges.append((path, offset, offset + nbytes))
        for sid, blob in zip(ids, reader._fetch(ranges), strict=True):
            if blob is None:
                raise StoreError(f"{path} vanished while shard {shard} was rewritten", path=path)
            out[f][sid] = blob
    return out


# -- metrics --------------------------------------------------------------------------------


def metrics_schema() -> pa.Schema:
    """``run``, ``sample_id``, then each of METRIC_NAMES as float64 (NULL: not measured)."""
    from ..infer.metrics import METRIC_NAMES

    return pa.schema(
        [("run", pa.string()), ("sample_id", pa.int64())]
        + [(m, pa.float64()) for m in METRIC_NAMES]
    )


def _conform(run: str, rows: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    schema = metrics_schema()
    if "sample_id" not in rows.column_names:
        raise ConfigError(f"metrics of run {run} need a sample_id column")
    columns = []
    for f in schema:
        if f.name == "run":
            columns.append(pa.array([run] * rows.num_rows, pa.string()))
        elif f.name in rows.column_names:
            col = rows.column(f.name).cast(f.type)
            if pa.types.is_floating(f.type):
                col = pc.if_else(pc.is_nan(col), pa.scalar(None, f.type), col)
            columns.append(col)
        else:
            columns.append(pa.nulls(rows.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def write_metrics(
    store_url: str,
    run: str,
    rows: pa.Table,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write per-sample metrics of ``run`` (a ``sample_id`` column and some of METRIC_NAMES;
    NaN is stored as NULL), one Parquet piece per shard, each replacing the rows of the
    same samples it held before, atomically."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    store = open_layout(store_url, storage_options)
    layout = open_run(store, run)
    table = _conform(run, rows)
    ids = table.column("sample_id").to_numpy(zero_copy_only=False).astype(np.int64)
    for shard, where in sorted(_shard_groups(ids, layout.shard_size).items()):
        piece = table.take(pa.array(where))
        path = layout.metrics_path(shard)
        with contextlib.suppress(FileNotFoundError):
            with layout.fs.open(path, "rb") as handle:
                old = pq.read_table(handle).cast(table.schema)
            stale = pc.is_in(old.column("sample_id"), value_set=piece.column("sample_id"))
            piece = pa.concat_tables([old.filter(pc.invert(stale)), piece])
        piece = piece.sort_by("sample_id")
        sink = pa.BufferOutputStream()
        pq.write_table(piece, sink)
        atomic_write_bytes(layout.fs, path, sink.getvalue().to_pybytes())


def read_metrics(store: StoreLayout) -> pa.Table:
    """Every run's metrics as one table (``metrics_schema()``; 0 rows when none)."""
    import pyarrow.parquet as pq

    schema = metrics_schema()
    tables = [schema.empty_table()]
    for info in list_runs(store):
        folder = join(_runs_root(store), info.name, METRICS_DIR)
        try:
            store.fs.invalidate_cache(folder)
            names = sorted(store.fs.ls(folder, detail=False))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if not name.endswith(".parquet"):
                continue
            if is_local(store.fs):
                tables.append(pq.read_table(name).cast(schema))
            else:
                with store.fs.open(name, "rb") as handle:
                    tables.append(pq.read_table(handle).cast(schema))
    return pa.concat_tables(tables)
