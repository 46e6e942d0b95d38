"""Choosing samples from a catalog: ``--where``, ``--ids``, ``--limit`` with ``--seed``.

The three combine: the predicate and the id list filter the ``samples`` view, then
``--limit N`` draws N of what is left at random, the same seed giving the same samples
for the same catalog. Ids are compact lists such as ``0-999,120000``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .. import facts
from ..errors import ConfigError
from .catalog import Catalog
from .directory import PartCatalog

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Selection:
    """How samples are picked (all None: every sample of the catalogued parts)."""

    where: str | None = None
    ids: str | None = None
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1 (got {self.limit})")
        if self.ids is not None:
            facts.parse_sample_ids(self.ids)
        if self.where is not None and not self.where.strip():
            raise ConfigError("--where is empty; give an SQL condition, e.g. \"scenario = 'face'\"")

    @property
    def empty(self) -> bool:
        return self.where is None and self.ids is None and self.limit is None


def parts_for_ids(spec: str) -> list[str]:
    """The parts expected to hold these ids (5000 consecutive ids per part)."""
    indices: set[int] = set()
    for lo, hi in facts.parse_sample_ids(spec):
        indices.update(range(lo // facts.SAMPLES_PER_PART, hi // facts.SAMPLES_PER_PART + 1))
    return [facts.part_name(i) for i in sorted(indices)]


def _ids_predicate(spec: str) -> str:
    terms = [
        f"sample_id = {lo}" if lo == hi else f"sample_id BETWEEN {lo} AND {hi}"
        for lo, hi in facts.parse_sample_ids(spec)
    ]
    return "(" + " OR ".join(terms) + ")"


_RESULT = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("part", pa.string()),
        ("scenario", pa.string()),
        ("bytes", pa.int64()),
        ("complete", pa.bool_()),
    ]
)
_DIRECT_ROWS = 200_000
"""Most member rows :func:`_select_ids` groups in Python; more go through DuckDB."""


def select_samples(catalog: Catalog, selection: Selection) -> pa.Table:
    """``sample_id``, ``part``, ``scenario``, ``bytes``, ``complete`` of the chosen
    samples, by id. A sample listed by two parts is taken from the first."""
    table = (
        _select_ids(catalog, selection.ids) if selection.where is None and selection.ids else None
    )
    if table is None:
        table = _select_sql(catalog, selection)
    if selection.limit is not None and selection.limit < table.num_rows:
        rng = np.random.default_rng(selection.seed)
        chosen = np.sort(rng.choice(table.num_rows, size=selection.limit, replace=False))
        table = table.take(pa.array(chosen))
    elif selection.limit is not None:
        logger.info(
            "--limit %d: only %d samples match, taking them all", selection.limit, table.num_rows
        )
    return table


def _select_sql(catalog: Catalog, selection: Selection) -> pa.Table:
    conditions = []
    if selection.where is not None:
        conditions.append(f"({selection.where})")
    if selection.ids is not None:
        conditions.append(_ids_predicate(selection.ids))
    sql = (
        "SELECT sample_id, part, scenario, bytes, complete FROM samples"
        + (" WHERE " + " AND ".join(conditions) if conditions else "")
        + " QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY part) = 1"
        + " ORDER BY sample_id"
    )
    table = catalog.query(sql)
    if selection.ids is not None:
        _check_ids_found(catalog, selection.ids)
    return table


def _select_ids(catalog: Catalog, spec: str) -> pa.Table | None:
    """What :func:`_select_sql` gives for ids alone, without DuckDB (loading and
    starting it costs more than a small fetch): the rows of the ids are picked with
    numpy and grouped here. None when they are too many rows for that."""
    ranges = sorted(facts.parse_sample_ids(spec))
    starts = np.array([lo for lo, _ in ranges], dtype=np.int64)
    reach = np.maximum.accumulate(np.array([hi for _, hi in ranges], dtype=np.int64))
    picked: list[tuple[PartCatalog, np.ndarray]] = []
    for part in catalog.parts:
        ids = part.table.column("sample_id").to_numpy()
        at = np.searchsorted(starts, ids, side="right") - 1
        rows = np.flatnonzero((at >= 0) & (ids <= reach[np.maximum(at, 0)]))
        picked.append((part, rows))
    if sum(len(rows) for _, rows in picked) > _DIRECT_ROWS:
        return None
    samples: dict[int, tuple[str, int, set[str]]] = {}
    for part, rows in sorted(picked, key=lambda p: p[0].name):  # the first part wins
        if not len(rows):
            continue
        table = part.table
        ids = table.column("sample_id").to_numpy()[rows].tolist()
        sizes = table.column("compressed_size").to_numpy()[rows].tolist()
        kinds = table.column("kind").to_pylist()
        seen: dict[int, tuple[str, int, set[str]]] = {}
        for sid, size, row in zip(ids, sizes, rows.tolist(), strict=True):
            _, total, have = seen.setdefault(sid, (part.name, 0, set()))
            have.add(kinds[row])
            seen[sid] = (part.name, total + size, have)
        for sid, entry in seen.items():
            samples.setdefault(sid, entry)
    wanted = {i for lo, hi in ranges for i in range(lo, hi + 1)}
    _raise_missing(catalog, sorted(wanted - samples.keys()))
    order = sorted(samples)
    return pa.table(
        {
            "sample_id": order,
            "part": [samples[s][0] for s in order],
            "scenario": [facts.scenario_of(s) for s in order],
            "bytes": [samples[s][1] for s in order],
            "complete": [len(samples[s][2]) == len(facts.FILE_KINDS) for s in order],
        },
        schema=_RESULT,
    )


def _check_ids_found(catalog: Catalog, spec: str) -> None:
    found = set(
        catalog.query(f"SELECT sample_id FROM samples WHERE {_ids_predicate(spec)}")
        .column("sample_id")
        .to_pylist()
    )
    wanted = {i for lo, hi in facts.parse_sample_ids(spec) for i in range(lo, hi + 1)}
    _raise_missing(catalog, sorted(wanted - found))


def _raise_missing(catalog: Catalog, missing: list[int]) -> None:
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ConfigError(
            f"{len(missing)} requested sample id(s) are in none of the catalogued parts "
            f"({', '.join(p.name for p in catalog.parts) or 'none'}): {shown}; "
            "name the parts holding them with --parts (or --parts all)"
        )
