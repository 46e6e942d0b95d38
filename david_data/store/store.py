"""``SynthHumanStore``: open a converted store, read samples, query metadata, make datasets.

A :class:`StoreDataset` is a map-style dataset over store samples, safe to pickle into
DataLoader workers: it holds only the store URL, its storage options and the sample ids,
and each worker process reopens the store on first access. No torch import: any loader
that calls ``len()`` and ``[i]`` works (``torch.utils.data.DataLoader(dataset, num_workers=N)``).
The store and its datasets make each other, so they share this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .. import facts
from ..errors import ConfigError, StoreError
from ..format.codecs import ARRAYS
from ..format.consolidated import read_metadata
from ..format.layout import StoreLayout, open_layout
from ..format.metadata import STATUS_OK
from ..format.reader import ShardReader, missing_chunks
from .query import MetadataSQL, ids_of
from .runs import RunInfo, RunView, list_runs, open_run, read_metrics

FIELDS = ARRAYS

if TYPE_CHECKING:
    from ..loader import StoreLoader


class SynthHumanStore:
    """A converted SynthHuman store (local path or fsspec URL).

    Opening reads only the small ``zarr.json`` files; the metadata table loads on first
    use of ``len``, ``sample_ids``, ``query`` or ``subset`` (one consolidated file, plus
    the shard files committed after it), and one locked DuckDB connection serves every
    query of this object. Arrays come back writable. Picklable: a copy in another process
    reopens the store lazily.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.storage_options = storage_options
        self._layout: StoreLayout | None = None
        self._reader: ShardReader | None = None
        self._metadata: pa.Table | None = None
        self._ok_ids: np.ndarray | None = None
        self._sql: MetadataSQL | None = None
        self._runs: dict[str, RunView] = {}

    # -- pickling: only the address travels ------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["url"], state["storage_options"])

    def __repr__(self) -> str:
        return f"SynthHumanStore({self.url!r})"

    @property
    def layout(self) -> StoreLayout:
        if self._layout is None:
            self._layout = open_layout(self.url, self.storage_options)
        return self._layout

    @property
    def reader(self) -> ShardReader:
        if self._reader is None:
            self._reader = ShardReader(self.layout)
        return self._reader

    @property
    def attributes(self) -> dict[str, Any]:
        """Store-level attributes: format and converter version, profile, source, creation time."""
        return dict(self.layout.attributes)

    @property
    def metadata(self) -> pa.Table:
        """Every metadata row (ok and error), sorted by sample id."""
        if self._metadata is None:
            self._metadata = read_metadata(self.layout)
        return self._metadata

    @property
    def sample_ids(self) -> np.ndarray:
        """Ids of the converted samples (status ok), ascending, int64."""
        if self._ok_ids is None:
            table = self.metadata
            ok = np.asarray(table.column("status").to_numpy(zero_copy_only=False) == STATUS_OK)
            ids = table.column("sample_id").to_numpy(zero_copy_only=False)
            self._ok_ids = ids.astype(np.int64, copy=False)[ok]  # indexing makes the one copy
        return self._ok_ids

    def __len__(self) -> int:
        return int(self.sample_ids.size)

    def __contains__(self, sample_id: object) -> bool:
        return bool(np.isin(int(sample_id), self.sample_ids))  # type: ignore[call-overload]  # any int()-able id

    def _missing(self, sample_id: int) -> StoreError:
        import pyarrow.compute as pc

        rows = self.metadata.filter(pc.equal(self.metadata.column("sample_id"), sample_id))
        if rows.num_rows and rows.column("status")[0].as_py() == STATUS_OK:
            return StoreError(missing_chunks(self.reader.layout, sample_id), sample_id=sample_id)
        if rows.num_rows and rows.column("status")[0].as_py() != STATUS_OK:
            reason = rows.column("error")[0].as_py()
            return StoreError(
                f"sample {sample_id} could not be converted: {reason}", sample_id=sample_id
            )
        return StoreError(
            f"sample {sample_id} is not in {self.url}; convert the part holding it "
            f"(likely {facts.part_name(sample_id // facts.SAMPLES_PER_PART)})",
            sample_id=sample_id,
        )

    def sample(
        self, sample_id: int, run: str | None = None, runs: Sequence[str] = ()
    ) -> dict[str, Any]:
        """One sample: ``rgb`` (H,W,3) uint8 RGB, ``alpha``, ``depth``, ``normal``,
        ``intrinsics`` (3,3) float64, ``scenario`` and ``sample_id``; with ``run`` (or
        ``runs``), for each run R: ``R/covered`` (bool) and, when R holds the sample,
        ``R/<field>`` (float32) for each field it predicts. An uncovered sample has no
        prediction keys (never zeros)."""
        sid = check_sample_id(sample_id)
        (arrays,) = self.reader.read([sid])
        if arrays is None:
            raise self._missing(sid)
        out = {**arrays, "scenario": facts.scenario_of(sid), "sample_id": sid}
        for name in _run_names(run, runs):
            predicted, covered = self.run_view(name).read([sid])
            out[f"{name}/covered"] = bool(covered[0])
            if covered[0]:
                out.update({f"{name}/{f}": a[0] for f, a in predicted.items()})
        return out

    # -- runs: predictions and metrics beside the ground truth -------------------------------
    @property
    def runs(self) -> list[RunInfo]:
        """The store's runs (model predictions, see :mod:`david_data.store.runs`), by name."""
        return list_runs(self.layout)

    def run(self, name: str) -> RunInfo:
        """One run's description; StoreError naming the runs there when it is unknown."""
        return self.run_view(name).info

    def covered(self, name: str) -> np.ndarray:
        """Ids (int64, ascending) of the samples run ``name`` holds, read fresh."""
        return self.run_view(name).all_covered()

    def run_view(self, name: str) -> RunView:
        """The reader of one run (cached on this object)."""
        view = self._runs.get(name)
        if view is None:
            view = self._runs[name] = RunView(open_run(self.layout, name))
        return view

    @property
    def metrics(self) -> pa.Table:
        """Per-sample metrics of every run (``run``, ``sample_id``, the metric columns)."""
        return read_metrics(self.layout)

    def read_batch(
        self, sample_ids: Iterable[int], fields: Sequence[str] = FIELDS
    ) -> dict[str, np.ndarray]:
        """Many samples at once: each field stacked along a new first axis, plus
        ``sample_id`` (int64) and ``scenario`` (str). Chunk reads are batched."""
        ids = [check_sample_id(s) for s in sample_ids]
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise StoreError(f"unknown fields {unknown}; choose among {', '.join(FIELDS)}")
        results = self.reader.read(ids, tuple(fields))
        for sid, arrays in zip(ids, results, strict=True):
            if arrays is None:
                raise self._missing(sid)
        out: dict[str, np.ndarray] = {}
        for name in fields:
            shape = (len(ids), *self.layout.sample_shape(name))
            stacked = np.empty(shape, dtype=self.layout.dtypes[name])
            for i, arrays in enumerate(results):
                assert arrays is not None
                stacked[i] = arrays[name]
            out[name] = stacked
        out["sample_id"] = np.asarray(ids, dtype=np.int64)
        out["scenario"] = np.asarray([facts.scenario_of(s) for s in ids])
        return out

    def query(self, sql: str) -> pa.Table:
        """Run one DuckDB SELECT over the metadata, exposed as table ``samples``, and the
        runs' per-sample metrics, table ``metrics`` (joinable ``USING (sample_id)``). The
        connection is read-only: no file access, COPY, ATTACH or extensions. Both tables
        are read on the first query of this object."""
        if self._sql is None:
            self._sql = MetadataSQL(self.metadata, {"metrics": self.metrics})
        return self._sql.query(sql)

    def subset(self, sql_or_ids: str | Iterable[int] | None = None) -> StoreDataset:
        """A picklable map-style dataset over the samples a query selects (its ``sample_id``
        column, in result order) or over the given ids; None = all converted samples.
        Samples that failed conversion are left out."""
        if sql_or_ids is None:
            ids = self.sample_ids
        elif isinstance(sql_or_ids, str):
            ids = ids_of(self.query(sql_or_ids))
        else:
            ids = np.asarray([check_sample_id(s) for s in sql_or_ids], dtype=np.int64)
        ids = ids[np.isin(ids, self.sample_ids)]
        return StoreDataset(self.url, ids, self.storage_options, store=self)

    def loader(self, batch_size: int, **options: Any) -> StoreLoader:
        """A stateful, distributed-aware PyTorch loader over this store; options and
        guarantees are documented on :class:`david_data.loader.StoreLoader`."""
        from ..loader import StoreLoader

        return StoreLoader(self, batch_size, **options)


def _run_names(run: str | None, runs: Sequence[str]) -> list[str]:
    if isinstance(runs, str):
        runs = [runs]
    names = ([run] if run is not None else []) + [r for r in runs if r != run]
    return list(dict.fromkeys(names))


def check_sample_id(sample_id: Any) -> int:
    """Coerce a sample id to int and check its range."""
    try:
        sid = int(sample_id)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"sample id {sample_id!r} is not an integer") from exc
    if not 0 <= sid < facts.NUM_SAMPLES:
        raise StoreError(
            f"sample id {sid} is out of range; give one in 0 ... {facts.NUM_SAMPLES - 1}"
        )
    return sid


def open_store(url: str, storage_options: dict[str, Any] | None = None) -> SynthHumanStore:
    """Open a converted store (local path or fsspec URL, e.g. ``az://container/store``)."""
    store = SynthHumanStore(url, storage_options)
    store.layout  # noqa: B018  (fail early with a clear error when it is not a store)
    return store


DEFAULT_SPLITS: Mapping[str, float] = {"train": 0.9, "val": 0.05, "test": 0.05}


class StoreDataset:
    """Samples of a store, by position. ``dataset[i]`` is ``store.sample(sample_ids[i])``."""

    def __init__(
        self,
        url: str,
        sample_ids: Sequence[int] | np.ndarray,
        storage_options: dict[str, Any] | None = None,
        *,
        store: SynthHumanStore | None = None,
    ) -> None:
        self.url = url
        self.storage_options = storage_options
        self.sample_ids = np.asarray(sample_ids, dtype=np.int64)
        self._store = store

    def __len__(self) -> int:
        return int(self.sample_ids.size)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        return self.store.sample(int(self.sample_ids[index]))

    @property
    def store(self) -> SynthHumanStore:
        if self._store is None:
            self._store = SynthHumanStore(self.url, self.storage_options)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "sample_ids": self.sample_ids,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["url"], state["sample_ids"], state["storage_options"])

    def __repr__(self) -> str:
        return f"StoreDataset({self.url!r}, {len(self)} samples)"

    def split(
        self, fractions: Mapping[str, float] = DEFAULT_SPLITS, seed: int = 0
    ) -> dict[str, StoreDataset]:
        """Deterministic seeded splits, stratified by scenario (see :func:`split_ids`)."""
        parts = split_ids(self.sample_ids, fractions, seed)
        return {
            name: StoreDataset(self.url, ids, self.storage_options, store=self._store)
            for name, ids in parts.items()
        }


def split_ids(
    sample_ids: np.ndarray, fractions: Mapping[str, float], seed: int = 0
) -> dict[str, np.ndarray]:
    """Split ids so each split holds the same share of every scenario.

    Within each scenario the ids are sorted, shuffled with ``numpy.random.default_rng(seed)``
    and cut at the cumulative fractions (rounded); each split's ids come back sorted. The
    same ids, fractions and seed always give the same splits.
    """
    if not fractions or any(f < 0 for f in fractions.values()):
        raise ConfigError(f"split fractions must be non-negative, got {dict(fractions)}")
    total = sum(fractions.values())
    if not 0.999 <= total <= 1.001:
        raise ConfigError(f"split fractions must add up to 1, got {total:g} ({dict(fractions)})")
    ids = np.unique(np.asarray(sample_ids, dtype=np.int64))
    out: dict[str, list[np.ndarray]] = {name: [] for name in fractions}
    for k, scenario in enumerate(facts.SCENARIOS):
        span = facts.scenario_range(scenario)
        group = ids[(ids >= span.start) & (ids < span.stop)]
        order = np.random.default_rng([seed, k]).permutation(group.size)
        cuts = np.round(np.cumsum(list(fractions.values())) * group.size).astype(int)
        start = 0
        for name, stop in zip(fractions, cuts, strict=True):
            out[name].append(group[order[start:stop]])
            start = stop
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in out.items()}
