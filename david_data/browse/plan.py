"""What a browse report shows, planned as plain data: the samples, the runs, the table's
columns and rows, and the work units that draw the pictures.

The table holds the store's metadata of each chosen sample and, for each run, the
metrics of :data:`david_data.infer.metrics.METRIC_NAMES` it has (columns named
``<run>:<metric>``; a metric no sample of the run has is left out). Its default order
is worst first by the first metric of the first run, or by sample id without runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from .._parse import parse_int
from ..errors import ConfigError
from ..fsutil import is_local, resolve, to_url
from ..infer.metrics import METRIC_NAMES
from ..store import open_store
from ..store.output import refuse_store
from ..store.query import ids_of

UNIT_SAMPLES = 32
"""Most samples one work unit draws (fewer when there are few, so every worker gets some)."""
HIDDEN_COLUMNS = frozenset({"part_sha256", "shard", "status", "error", "width", "height"})
"""Metadata columns the table leaves out (the same for every sample, or bookkeeping)."""
LEADING_COLUMNS = ("sample_id", "part", "scenario")
"""Metadata columns shown before the metrics; the rest follow them."""
HIGHER_IS_BETTER = frozenset({"normal_within_11_25", "normal_within_22_5", "normal_within_30"})
"""Metrics where a larger value is better; for every other metric smaller is better."""


@dataclass(frozen=True, kw_only=True)
class BrowseSettings:
    """What ``browse`` shows and where it writes the report."""

    store_url: str
    output: str
    """A local folder: the report opens from disk (``index.html``)."""
    runs: tuple[str, ...] | None = None
    """The runs shown, in this order (None: every run of the store, by name)."""
    query: str | None = None
    """SQL over ``samples`` (and ``metrics``) returning a ``sample_id`` column (None: all)."""
    workers: int = 1
    """Processes drawing pictures (1: in this process; ignored on a Dask cluster)."""
    storage_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Plain values as a flow's parameters or the CLI give them: a list of runs, text numbers.
        if self.runs is not None:
            object.__setattr__(self, "runs", tuple(self.runs))
        object.__setattr__(self, "workers", parse_int("--workers", self.workers, minimum=1))
        if not self.output:
            raise ConfigError("give the report folder with -o DIR")
        if self.runs is not None and len(set(self.runs)) != len(self.runs):
            raise ConfigError(f"--run names a run twice: {' '.join(self.runs)}")


@dataclass(frozen=True, kw_only=True)
class RunRef:
    """A run as the report shows it."""

    name: str
    model: str
    model_sha256: str
    fields: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PictureUnit:
    """A work unit: draw the pictures of a group of samples (plain data, picklable)."""

    store_url: str
    output: str
    sample_ids: tuple[int, ...]
    runs: tuple[tuple[RunRef, ...], ...]
    """For each sample, the runs that hold it."""
    storage_options: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"browse {self.sample_ids[0]}-{self.sample_ids[-1]}"


@dataclass(frozen=True, kw_only=True)
class Column:
    """A column of the report's table."""

    key: str
    kind: str
    """``int``, ``float`` or ``str``."""
    run: str | None = None
    metric: str | None = None
    better: str | None = None
    """``lower`` or ``higher`` for a metric, None otherwise."""


@dataclass(frozen=True, kw_only=True)
class BrowsePlan:
    """Plain data: the table, the runs, the units, and the default order."""

    settings: BrowseSettings
    """With the store URL absolute and the output an absolute local path."""
    runs: tuple[RunRef, ...]
    columns: tuple[Column, ...]
    table: pa.Table
    """One row per chosen sample (ascending id), the columns of :attr:`columns`."""
    covered: tuple[tuple[bool, ...], ...]
    """Per row, whether each run of :attr:`runs` holds the sample."""
    sort_column: str
    sort_descending: bool
    units: tuple[PictureUnit, ...]

    @property
    def samples(self) -> int:
        return int(self.table.num_rows)


def plan_browse(settings: BrowseSettings) -> BrowsePlan:
    """Read the store's metadata, runs and metrics and plan the report (see the module
    docstring); units of at most :data:`UNIT_SAMPLES` samples. Nothing is written."""
    fs, out = resolve(settings.output)
    if not is_local(fs):
        raise ConfigError(
            f"-o {settings.output}: the report is a folder that opens from disk; give a local path"
        )
    if fs.exists(out) and not fs.isdir(out):
        raise ConfigError(
            f"-o {settings.output} is a file; give a folder (it is created if missing)"
        )
    refuse_store(fs, out, "-o")
    store = open_store(settings.store_url, settings.storage_options)
    settings = replace(settings, store_url=to_url(store.layout.fs, store.layout.root), output=out)
    infos = [store.run(name) for name in settings.runs] if settings.runs is not None else store.runs
    runs = tuple(
        RunRef(name=i.name, model=i.model, model_sha256=i.model_sha256, fields=tuple(i.tasks))
        for i in infos
    )
    ids = store.sample_ids
    if settings.query is not None:
        ids = np.unique(ids_of(store.query(settings.query)))
        ids = ids[np.isin(ids, store.sample_ids)]
        if not ids.size:
            raise ConfigError(
                f"no samples of {settings.store_url} selected by --query {settings.query!r}; "
                "check it with 'david-data query STORE SQL'"
            )
    table = _metadata(store.metadata, ids)
    columns = [
        Column(key=name, kind=_kind(table.schema.field(name).type)) for name in table.column_names
    ]
    covered_by = [np.isin(ids, store.covered(run.name)) for run in runs]
    for run in runs:
        metrics = store.query(f"SELECT * FROM metrics WHERE run = '{run.name}'")
        table, added = _add_metrics(table, run.name, metrics)
        columns += added
    # Who the sample is, then how the runs did, then the rest of its metadata.
    first_keys = [c.key for c in columns if c.key in LEADING_COLUMNS or c.run is not None]
    order = first_keys + [c.key for c in columns if c.key not in first_keys]
    columns.sort(key=lambda c: order.index(c.key))
    table = table.select(order)
    sort_column, descending = "sample_id", False
    first = next((c for c in columns if runs and c.run == runs[0].name), None)
    if first is not None:
        sort_column, descending = first.key, first.better == "lower"
    covered = tuple(zip(*covered_by, strict=True)) if runs else tuple(() for _ in ids)
    units = _units(settings, [int(s) for s in ids], covered, runs)
    return BrowsePlan(
        settings=settings,
        runs=runs,
        columns=tuple(columns),
        table=table,
        covered=tuple(tuple(bool(c) for c in row) for row in covered),
        sort_column=sort_column,
        sort_descending=descending,
        units=units,
    )


def _metadata(metadata: pa.Table, ids: np.ndarray) -> pa.Table:
    import pyarrow.compute as pc

    rows = metadata.filter(pc.is_in(metadata.column("sample_id"), pa.array(ids, pa.int64())))
    rows = rows.sort_by("sample_id")
    return rows.select([n for n in rows.column_names if n not in HIDDEN_COLUMNS])


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype):
        return "float"
    return "str"


def _add_metrics(table: pa.Table, run: str, metrics: pa.Table) -> tuple[pa.Table, list[Column]]:
    """The run's metric columns joined onto ``table`` by sample id (null where the run has
    no metrics for a sample), leaving out metrics the run has for no sample."""
    by_id = {}
    ids = metrics.column("sample_id").to_pylist() if metrics.num_rows else []
    for name in METRIC_NAMES:
        if name not in metrics.column_names:
            continue
        values = metrics.column(name).to_pylist()
        known = {
            sid: v
            for sid, v in zip(ids, values, strict=True)
            if v is not None and not math.isnan(v)
        }
        if known:
            by_id[name] = known
    added = []
    sample_ids = table.column("sample_id").to_pylist()
    for name, known in by_id.items():
        key = f"{run}:{name}"
        column = pa.array([known.get(sid) for sid in sample_ids], pa.float64())
        table = table.append_column(key, column)
        better = "higher" if name in HIGHER_IS_BETTER else "lower"
        added.append(Column(key=key, kind="float", run=run, metric=name, better=better))
    return table, added


def _units(
    settings: BrowseSettings,
    ids: list[int],
    covered: Any,
    runs: tuple[RunRef, ...],
) -> tuple[PictureUnit, ...]:
    per_unit = max(1, min(UNIT_SAMPLES, math.ceil(len(ids) / (2 * settings.workers))))
    units = []
    for start in range(0, len(ids), per_unit):
        chunk = range(start, min(start + per_unit, len(ids)))
        units.append(
            PictureUnit(
                store_url=settings.store_url,
                output=settings.output,
                sample_ids=tuple(ids[i] for i in chunk),
                runs=tuple(
                    tuple(run for run, held in zip(runs, covered[i], strict=True) if held)
                    for i in chunk
                ),
                storage_options=settings.storage_options,
            )
        )
    return tuple(units)
