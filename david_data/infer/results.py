"""Per-run results tables and the "already done for this model" check.

Every run that has work to do gets an id (``20261121T124500Z-1a2b``) and records one row
per input it processed::

    OUTPUT/_runs/<run id>/batch-00007.parquet   written as each batch finishes
    OUTPUT/_runs/<run id>.parquet               the whole run, written at its end (the
                                                batch files are then removed)

A killed run leaves its batch files behind; :func:`read_results` reads them together
with the finished runs' tables.

Whether an input is done is decided from one listing of OUTPUT, not from the tables:
its outputs are complete for model ``S`` when its commit marker ``NAME.<S[:12]>.<K>.done``
(``K``: the input's current key, inputs.py) and every expected output file exist
(outputs.py). The markers of one model call's inputs are written as soon as their files
are synced, so a killed run loses at most the images in flight.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from ..fsutil import atomic_write_bytes, join, resolve
from .inputs import InputItem
from .outputs import marker_name, output_names, output_stem, parse_marker

logger = logging.getLogger(__name__)

RUNS_DIR = "_runs"
STATUS_OK, STATUS_FAILED = "ok", "failed"

SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("depth", pa.string()),
        ("normal", pa.string()),
        ("foreground", pa.string()),
        ("vis", pa.string()),
        ("model_sha256", pa.string()),
        ("seconds", pa.float64()),
        ("run_id", pa.string()),
        ("batch", pa.int32()),
        ("finished_at", pa.timestamp("ms", tz="UTC")),
    ]
)
"""Columns of a results table. ``input`` is the relative name ``REL/NAME.EXT``,
``source`` the URL it was read from; ``depth``... ``vis`` are output URLs (null when
not written); ``seconds`` is the input's own work: read + decode + pre-processing, its
share of the model call, post-processing + encoding + writing."""


@dataclass(frozen=True, kw_only=True)
class ResultRow:
    """The outcome of one input."""

    input: str
    source: str
    status: str
    error: str | None = None
    depth: str | None = None
    normal: str | None = None
    foreground: str | None = None
    vis: str | None = None
    model_sha256: str
    seconds: float
    run_id: str
    batch: int
    finished_at: dt.datetime


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 4 random hex digits."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:4]}"


def results_table(rows: Iterable[ResultRow]) -> pa.Table:
    """Rows as an Arrow table with :data:`SCHEMA`."""
    return pa.Table.from_pylist([asdict(r) for r in rows], schema=SCHEMA)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data: bytes = sink.getvalue().to_pybytes()  # pyarrow is untyped
    return data


def batch_results_path(root: str, run_id: str, batch: int) -> str:
    return join(root, RUNS_DIR, run_id, f"batch-{batch:05d}.parquet")


def run_results_path(root: str, run_id: str) -> str:
    return join(root, RUNS_DIR, f"{run_id}.parquet")


def write_batch_results(
    fs: AbstractFileSystem, root: str, run_id: str, batch: int, rows: Sequence[ResultRow]
) -> str:
    """Write one batch's rows (atomic); returns the path."""
    path = batch_results_path(root, run_id, batch)
    atomic_write_bytes(fs, path, _parquet_bytes(results_table(rows)))
    return path


def write_run_results(
    fs: AbstractFileSystem, root: str, run_id: str, rows: Sequence[ResultRow]
) -> str:
    """Write the whole run's table (atomic), then drop its per-batch files."""
    path = run_results_path(root, run_id)
    table = results_table(sorted(rows, key=lambda r: r.input))
    atomic_write_bytes(fs, path, _parquet_bytes(table))
    folder = join(root, RUNS_DIR, run_id)
    with contextlib.suppress(FileNotFoundError):
        if fs.exists(folder):
            fs.rm(folder, recursive=True)
    return path


def read_results(output: str, storage_options: dict[str, Any] | None = None) -> pa.Table:
    """All results rows under OUTPUT: finished runs and the batch files of killed ones."""
    fs, root = resolve(output, storage_options)
    runs = join(root, RUNS_DIR)
    try:
        paths = sorted(p for p in fs.find(runs) if p.endswith(".parquet"))
    except FileNotFoundError:
        paths = []
    tables = [pq.read_table(fs.open(p, "rb")).cast(SCHEMA) for p in paths]
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


@dataclass(frozen=True, kw_only=True)
class DoneCheck:
    """Which inputs already have complete outputs for a model."""

    done: frozenset[str]
    """Relative input names to skip."""
    stale_markers: dict[str, tuple[str, ...]]
    """Input -> its markers to delete before rewriting its outputs (another model, a
    replaced input, or this very marker with outputs missing)."""
    orphaned: int
    """Output sets (markers) whose name matches no input: the input was removed or renamed."""


def orphans_text(count: int) -> str:
    """The line a plan and a report print about :attr:`DoneCheck.orphaned`."""
    return (
        f"{count} output set(s) under OUTPUT match no input of this run (input removed or "
        "renamed); left in place"
    )


def check_done(
    fs: AbstractFileSystem,
    root: str,
    items: Sequence[InputItem],
    *,
    model_sha256: str,
    kinds: Sequence[str],
) -> DoneCheck:
    """Decide from one listing of ``root`` which inputs are complete for the model: those
    with this model's marker for the input's current key and every output file."""
    try:
        listed = fs.find(root)
    except FileNotFoundError:
        listed = []
    prefix = root.rstrip("/") + "/"
    present = {p[len(prefix) :] for p in listed if p.startswith(prefix)}
    markers: dict[str, list[str]] = {}
    for name in present:
        parsed = parse_marker(name)
        if parsed is not None:
            markers.setdefault(parsed[0], []).append(name)
    done: set[str] = set()
    stale: dict[str, tuple[str, ...]] = {}
    for item in items:
        found = markers.get(output_stem(item.rel), [])
        if not found:
            continue
        mine = marker_name(item.rel, model_sha256, item.key)
        if mine in found and all(n in present for n in output_names(item.rel, kinds).values()):
            done.add(item.rel)
        else:
            stale[item.rel] = tuple(sorted(found))
    stems = {output_stem(item.rel) for item in items}
    return DoneCheck(
        done=frozenset(done),
        stale_markers=stale,
        orphaned=sum(1 for stem in markers if stem not in stems),
    )
