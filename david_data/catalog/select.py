"""Choosing samples from a catalog: ``--where``, ``--ids``, ``--limit`` with ``--seed``.

The three combine: the predicate and the id list filter the ``samples`` view, then
``--limit N`` draws N of what is left at random, the same seed giving the same samples
for the same catalog. Ids are compact lists such as ``0-999,120000``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .. import facts
from ..errors import ConfigError
from .catalog import Catalog

if TYPE_CHECKING:  # pyarrow and numpy load only for SQL, --limit and a table result
    import pyarrow as pa

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
    def ids_alone(self) -> bool:
        """Chosen by ids alone (with or without ``--limit``): no SQL needed."""
        return self.where is None and bool(self.ids)

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


class Chosen(NamedTuple):
    """One chosen sample (a row of :func:`select_samples`' table)."""

    sample_id: int
    part: str
    scenario: str
    bytes: int
    complete: bool


_DIRECT_ROWS = 200_000
"""Most member rows :func:`_select_ids` groups in Python; more go through DuckDB."""


def select_samples(catalog: Catalog, selection: Selection) -> pa.Table:
    """``sample_id``, ``part``, ``scenario``, ``bytes``, ``complete`` of the chosen
    samples, by id. A sample listed by two parts is taken from the first."""
    import pyarrow as pa

    rows = _select_ids(catalog, selection.ids or "") if selection.ids_alone else None
    if rows is not None:
        rows = _limited(rows, selection)
        return pa.table(
            {name: [getattr(r, name) for r in rows] for name in Chosen._fields},
            schema=pa.schema(
                [
                    ("sample_id", pa.int64()),
                    ("part", pa.string()),
                    ("scenario", pa.string()),
                    ("bytes", pa.int64()),
                    ("complete", pa.bool_()),
                ]
            ),
        )
    table = _select_sql(catalog, selection)
    keep = _drawn(table.num_rows, selection)
    return table if keep is None else table.take(pa.array(keep))


def select_by_part(catalog: Catalog, selection: Selection) -> dict[str, list[int]]:
    """The ids :func:`select_samples` chooses, by part; ids alone are chosen without
    DuckDB, pyarrow or numpy (a fetch by ids loads none of them)."""
    rows = _select_ids(catalog, selection.ids or "") if selection.ids_alone else None
    out: dict[str, list[int]] = {}
    if rows is not None:
        for row in _limited(rows, selection):
            out.setdefault(row.part, []).append(row.sample_id)
        return out
    table = select_samples(catalog, selection)
    for sid, part in zip(
        table.column("sample_id").to_pylist(), table.column("part").to_pylist(), strict=True
    ):
        out.setdefault(part, []).append(sid)
    return out


def _drawn(rows: int, selection: Selection) -> list[int] | None:
    """The rows ``--limit`` keeps, ascending (same seed, same rows), or None for all."""
    if selection.limit is not None and selection.limit < rows:
        import numpy as np

        rng = np.random.default_rng(selection.seed)
        return [int(i) for i in np.sort(rng.choice(rows, size=selection.limit, replace=False))]
    if selection.limit is not None:
        logger.info("--limit %d: only %d samples match, taking them all", selection.limit, rows)
    return None


def _limited(rows: list[Chosen], selection: Selection) -> list[Chosen]:
    keep = _drawn(len(rows), selection)
    return rows if keep is None else [rows[i] for i in keep]


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


def _select_ids(catalog: Catalog, spec: str) -> list[Chosen] | None:
    """What :func:`_select_sql` gives for ids alone, without DuckDB (loading and
    starting it costs more than a small fetch): the rows of the ids are picked and
    grouped here. None when they are too many rows for that."""
    ranges = facts.parse_sample_ids(spec)
    wanted = {i for lo, hi in ranges for i in range(lo, hi + 1)}
    picked = []
    for part in catalog.parts:
        rows = [i for i, sid in enumerate(part.column("sample_id")) if sid in wanted]
        picked.append((part, rows))
    if sum(len(rows) for _, rows in picked) > _DIRECT_ROWS:
        return None
    samples: dict[int, tuple[str, int, set[str]]] = {}
    for part, rows in sorted(picked, key=lambda p: p[0].name):  # the first part wins
        if not rows:
            continue
        ids, sizes = part.column("sample_id"), part.column("compressed_size")
        kinds = part.column("kind")
        seen: dict[int, tuple[str, int, set[str]]] = {}
        for row in rows:
            sid = ids[row]
            _, total, have = seen.setdefault(sid, (part.name, 0, set()))
            have.add(kinds[row])
            seen[sid] = (part.name, total + sizes[row], have)
        for sid, entry in seen.items():
            samples.setdefault(sid, entry)
    _raise_missing(catalog, sorted(wanted - samples.keys()))
    return [
        Chosen(
            sample_id=sid,
            part=samples[sid][0],
            scenario=facts.scenario_of(sid),
            bytes=samples[sid][1],
            complete=len(samples[sid][2]) == len(facts.FILE_KINDS),
        )
        for sid in sorted(samples)
    ]


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
