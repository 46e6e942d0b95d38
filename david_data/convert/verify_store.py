"""Compare a store with its source, sample by sample: arrays bit-exact, metadata recomputed.

For each chosen sample the source files are decoded afresh and the metadata row is
recomputed; the store must hold the same bits in every array and the same metadata
values (``part_sha256`` is not rehashed: that would reread whole parts). A sample the
source cannot decode must be recorded with ``status = 'error'`` and absent from the arrays.
An empty (zero-byte) object anywhere in the store, or a damaged metadata file, stops
the check before it starts with a :class:`~david_data.errors.StoreError` naming them and
the fix; a shard object cut short or whose index fails its checksum is reported as a
difference of each sample it holds, a chunk failing its CRC-32C as a difference of its
sample naming the array.

Which samples are checked:

- a sparse store (converted from a selection, :mod:`.sparse`): exactly the samples its
  metadata rows hold, each from the part its row names (from an extracted folder: from
  that folder); the source's other samples are not looked at, and a part the rows name
  that SRC lacks is an error before anything is read;
- any other store: every sample of every part of SRC, so a sample the store lacks is a
  difference, and every sample the store holds: one its part in SRC lacks is a
  difference, one whose part SRC does not have is named as *not checked* (exit 1); from
  an HTTP base URL (a host lists all 61 parts), every sample of the parts the store's
  rows name.

Either way only the parts holding checked samples are read: from a host, their catalogs
and the members of the checked samples, never the other parts' directories.

It reads the store through :mod:`david_data.format` (layout, metadata, shard reader), as
:mod:`david_data.store` does, and decodes the source with this package's decoder.

A job of the engine (:mod:`david_data.engine`): :func:`plan_verify_store` (settings ->
plain plan), then :func:`run_verify_store` (plan, executor -> report), each unit up to
:data:`UNIT_SAMPLES` samples of one part (:func:`check_samples`), on processes of this
machine or a Dask cluster. A stop request (Ctrl-C) names the samples left unchecked.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..engine import Executor, make_executor, run_units
from ..engine.report import first_lines, markdown_table
from ..engine.signals import stop_requested
from ..errors import ConfigError, StoreError
from ..format.codecs import ARRAYS
from ..format.consolidated import read_metadata
from ..format.layout import open_layout
from ..format.metadata import STATUS_ERROR, STATUS_OK
from ..format.reader import ShardReader, missing_chunks
from ..fsutil import resolve, to_url
from ..mirror.manifest import compact_ranges
from ..net.http import is_http
from ..progress import NullProgress, Progress
from ..sources.base import Source
from ..sources.parts import PartRef, SampleMembers
from ..sources.resolve import open_source, read_files
from .decode import decode_sample
from .metadata import sample_row
from .sparse import selections
from .write import unseen_paths

EXECUTOR: Literal["threads", "processes"] = "processes"
"""Where this machine runs the units (CPU-bound: decoding the source again and
comparing); :mod:`david_data.jobs` reads it."""

logger = logging.getLogger(__name__)

_SKIP_COLUMNS = {"part_sha256", "shard", "error"}
UNIT_SAMPLES = 50
"""Most samples one work unit checks (smaller when there are few, so every worker gets some)."""
OUT_OF_PROCESS_GRACE = 2.0
"""Seconds a stop waits for units running in other processes or machines."""
INTERRUPTED = "not checked: the run was interrupted"

Difference = tuple[int, str, str]
"""``(sample_id, field or column, what differs)``."""


@dataclass(frozen=True, kw_only=True)
class VerifyStoreSettings:
    """What ``verify-store`` compares and how."""

    store_url: str
    source_url: str
    sample: int | None = None
    """Check this many samples drawn at random (None: all)."""
    seed: int = 0
    workers: int = 1
    """Processes checking samples (1: in this process; ignored on a Dask cluster)."""
    storage_options: dict[str, Any] | None = None
    source_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.sample is not None and self.sample < 1:
            raise ConfigError(
                f"--sample must be at least 1 (got {self.sample}); leave it out to check every sample"
            )
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")


@dataclass(frozen=True, kw_only=True)
class CheckUnit:
    """A work unit: samples of one part to compare with the store (plain data, picklable)."""

    store_url: str
    part: PartRef
    samples: tuple[SampleMembers, ...]
    rows: tuple[dict[str, Any] | None, ...]
    """The store's metadata row of each sample (None: the store has none)."""
    storage_options: dict[str, Any] | None = None
    source_options: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        ids = [s.sample_id for s in self.samples]
        return f"verify-store {self.part.name} {ids[0]}-{ids[-1]}"


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What a unit found: samples compared, their differences, samples left (a stop)."""

    checked: tuple[int, ...] = ()
    differences: tuple[Difference, ...] = ()
    not_checked: tuple[tuple[int, str], ...] = ()
    """``(sample_id, why)``."""


@dataclass(frozen=True, kw_only=True)
class VerifyStorePlan:
    """Plain data: the units to run, and the samples that cannot be checked, with why."""

    settings: VerifyStoreSettings
    """With both URLs absolute."""
    units: tuple[CheckUnit, ...]
    unchecked: tuple[tuple[int, str], ...]
    """``(sample_id, why)`` of samples to check that SRC cannot give."""
    selections: tuple[str, ...]
    held: int

    @property
    def samples(self) -> int:
        return sum(len(u.samples) for u in self.units)


@dataclass(frozen=True, kw_only=True)
class VerifyStoreReport:
    """Every sample asked for is checked or named as unchecked (implements
    :class:`david_data.engine.JobReport`); ``ok`` when all were checked and none differs."""

    store_url: str
    source_url: str
    checked: int
    differences: tuple[Difference, ...] = field(default=())
    selections: tuple[str, ...] = ()
    """The selections a sparse store was converted from (empty: not sparse)."""
    held: int = 0
    """Samples the store holds (its metadata rows)."""
    unchecked: tuple[tuple[int, str], ...] = ()
    """``(sample_id, why)`` of samples asked for but not checked."""
    interrupted: bool = False

    @property
    def failure_count(self) -> int:
        return len(self.differences) + len(self.unchecked)

    @property
    def ok(self) -> bool:
        return not self.failure_count and not self.interrupted

    @property
    def sparse(self) -> bool:
        return bool(self.selections)

    def _unchecked_lines(self) -> list[str]:
        by_reason: dict[str, list[int]] = defaultdict(list)
        for sid, why in self.unchecked:
            by_reason[why].append(sid)
        return [
            f"{len(ids)} sample(s) NOT checked ({why}): ids {_shown_ranges(ids)}"
            for why, ids in by_reason.items()
        ]

    def summary(self) -> str:
        head = (
            f"{self.store_url} vs {self.source_url}: {self.checked} samples checked, "
            f"{len(self.differences)} difference(s)"
        )
        if self.unchecked:
            head += f", {len(self.unchecked)} NOT checked"
        lines = [head]
        if self.sparse:
            lines.append(
                f"sparse store: {self.held} samples held (selection {'; '.join(self.selections)})"
            )
        lines += [f"  {line}" for line in self._unchecked_lines()]
        if any(why != INTERRUPTED for _, why in self.unchecked):
            lines.append("  (give --against a source holding those samples to check them)")
        lines += first_lines(self.differences, 50, lambda d: f"  sample {d[0]}: {d[1]}: {d[2]}")
        if self.interrupted:
            lines.append("interrupted: rerun the same command to check every sample")
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = markdown_table(
            ("samples checked", "differences", "not checked", "interrupted"),
            [
                (
                    self.checked,
                    len(self.differences),
                    len(self.unchecked),
                    "yes" if self.interrupted else "no",
                )
            ],
        )
        rows += ["", *[f"- {line}" for line in self._unchecked_lines()]]
        if self.differences:
            rows.append("")
            rows += markdown_table(
                ("sample", "field", "difference"),
                [(s, what, detail.replace("|", "/")) for s, what, detail in self.differences[:200]],
            )
        return (
            f"# Verify store `{self.store_url}`\n\nAgainst `{self.source_url}`.\n\n"
            + "\n".join(rows)
            + "\n"
        )


def _shown_ranges(ids: list[int], limit: int = 300) -> str:
    text = compact_ranges(sorted(ids))
    return text if len(text) <= limit else text[:limit].rsplit(",", 1)[0] + ", ..."


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def plan_verify_store(settings: VerifyStoreSettings) -> VerifyStorePlan:
    """The samples to check (see the module docstring; ``sample`` of them drawn at random
    with ``seed``), as units of at most :data:`UNIT_SAMPLES` samples of one part, and those
    SRC cannot give. Reads the store's metadata and the directories of the parts involved."""
    layout = open_layout(settings.store_url, settings.storage_options)
    _refuse_empty_objects(layout)
    source = open_source(settings.source_url, settings.source_options)
    source_url = settings.source_url
    if not is_http(source_url):
        source_url = to_url(*resolve(source_url, settings.source_options))
    settings = replace(settings, store_url=to_url(layout.fs, layout.root), source_url=source_url)
    rows = {r["sample_id"]: r for r in read_metadata(layout).to_pylist()}
    held = selections(layout)
    checkable, unchecked = _to_check(source, rows, sparse=bool(held), store_url=settings.store_url)
    everything = sorted([*checkable, *((sid, "") for sid in unchecked)])
    if settings.sample is not None and settings.sample < len(everything):
        picks = np.random.default_rng(settings.seed).choice(
            len(everything), size=settings.sample, replace=False
        )
        everything = sorted(everything[i] for i in picks)
    chosen: dict[str, list[int]] = defaultdict(list)
    for sid, name in everything:
        if name:
            chosen[name].append(sid)
    total = sum(len(ids) for ids in chosen.values())
    per_unit = max(1, min(UNIT_SAMPLES, math.ceil(total / (2 * settings.workers))))
    units = []
    for name, ids in chosen.items():
        part = source.part(name)
        located = part.locate(ids)  # first: a part on a host learns its size and ETag
        ref = part.ref()
        for i in range(0, len(located), per_unit):
            samples = tuple(located[i : i + per_unit])
            units.append(
                CheckUnit(
                    store_url=settings.store_url,
                    part=ref,
                    samples=samples,
                    rows=tuple(rows.get(s.sample_id) for s in samples),
                    storage_options=settings.storage_options,
                    source_options=settings.source_options,
                )
            )
    return VerifyStorePlan(
        settings=settings,
        units=tuple(units),
        unchecked=tuple((sid, unchecked[sid]) for sid, name in everything if not name),
        selections=held,
        held=len(rows),
    )


def check_samples(unit: CheckUnit) -> CheckResult:
    """The work unit: decode the unit's samples from SRC and compare them with the store
    (module level, so it runs anywhere). A stop request leaves the rest unchecked."""
    reader = ShardReader(open_layout(unit.store_url, unit.storage_options))
    located = {s.sample_id: s for s in unit.samples}
    rows = {s.sample_id: row for s, row in zip(unit.samples, unit.rows, strict=True)}
    checked: list[int] = []
    differences: list[Difference] = []
    for sid, files in read_files(unit.part, unit.samples, storage_options=unit.source_options):
        if stop_requested():
            break
        if not located[sid].members:
            differences.append(
                (sid, "source", f"{unit.part.name} of the source has no sample {sid}")
            )
        else:
            differences += _check(reader, rows[sid], sid, unit.part.name, files)
        checked.append(sid)
    done = set(checked)
    return CheckResult(
        checked=tuple(checked),
        differences=tuple(differences),
        not_checked=tuple(
            (s.sample_id, INTERRUPTED) for s in unit.samples if s.sample_id not in done
        ),
    )


def _unit_failed(unit: CheckUnit, exc: BaseException) -> CheckResult:
    """A unit that raised (the store or the part unreadable, a worker lost twice): its
    samples are unchecked, with the reason."""
    reason = f"{unit.part.name} cannot be read ({type(exc).__name__}: {exc})"
    return CheckResult(not_checked=tuple((s.sample_id, reason) for s in unit.samples))


def run_verify_store(
    plan: VerifyStorePlan, executor: Executor, *, progress: Progress | None = None
) -> VerifyStoreReport:
    """Run the plan's units on ``executor`` and report: every sample of the plan is checked
    or, with the reason, unchecked (a stop request leaves the rest unchecked)."""
    s = plan.settings
    if not executor.in_process and plan.units:
        found = executor.run_everywhere(
            unseen_paths, s.source_url, s.store_url, s.source_options, s.storage_options
        )
        unseen = sorted({item for missing in found for item in missing})
        if unseen:
            raise ConfigError(
                f"the workers of {executor.description} cannot see {' and '.join(unseen)}; give "
                "paths or URLs every worker reaches (a shared folder, az://...)"
            )
    logger.info(
        "verify-store: %d samples in %d units on %s",
        plan.samples,
        len(plan.units),
        executor.description,
    )
    handle = (progress or NullProgress()).task("verifying", total=plan.samples, unit="samples")
    outcome = run_units(
        executor,
        check_samples,
        plan.units,
        label=lambda unit: unit.label,
        on_error=_unit_failed,
        on_result=lambda unit, result: handle.advance(len(result.checked)),
        grace=8.0 if executor.in_process else OUT_OF_PROCESS_GRACE,
    )
    left = [(x.sample_id, INTERRUPTED) for u in outcome.not_run for x in u.samples]
    left += [item for r in outcome.results for item in r.not_checked]
    differences = sorted(d for r in outcome.results for d in r.differences)
    interrupted = outcome.interrupted or any(why == INTERRUPTED for _, why in left)
    handle.finish("interrupted" if interrupted else "differences" if differences else "ok")
    return VerifyStoreReport(
        store_url=s.store_url,
        source_url=s.source_url,
        checked=sum(len(r.checked) for r in outcome.results),
        differences=tuple(differences),
        selections=plan.selections,
        held=plan.held,
        unchecked=tuple(sorted([*plan.unchecked, *left])),
        interrupted=interrupted,
    )


def verify_store(
    store_url: str,
    source_url: str,
    *,
    sample: int | None = None,
    seed: int = 0,
    workers: int = 1,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> VerifyStoreReport:
    """Plan and run a check of ``sample`` random samples (all when None) of those the
    module docstring names, on ``workers`` local processes (1: in this process)."""
    plan = plan_verify_store(
        VerifyStoreSettings(
            store_url=store_url,
            source_url=source_url,
            sample=sample,
            seed=seed,
            workers=workers,
            storage_options=storage_options,
            source_options=source_options,
        )
    )
    with make_executor(EXECUTOR, plan.settings.workers) as executor:
        return run_verify_store(plan, executor, progress=progress or NullProgress())


def _to_check(
    source: Source, rows: dict[int, dict[str, Any]], *, sparse: bool, store_url: str
) -> tuple[list[tuple[int, str]], dict[int, str]]:
    """``(sample_id, part)`` of every sample to check (see the module docstring), and why
    each sample of the store that SRC cannot give is unchecked; reads the directories of
    the parts involved only."""
    if sparse:
        if source.kind == "extracted":  # one folder of loose files stands for every part
            (folder,) = source.parts
            return [(sid, folder.name) for sid in rows], {}
        wanted = [(sid, str(row["part"])) for sid, row in rows.items()]
        have = {p.name for p in source.parts}
        lacking = sorted({name for _, name in wanted} - have)
        if lacking:
            raise ConfigError(
                f"SRC {source.url} lacks {', '.join(lacking)}, which samples of the sparse "
                f"store {store_url} come from; give the source it was converted from (or one "
                "holding those parts) with --against"
            )
        return wanted, {}
    parts = source.parts
    if source.kind == "http":
        named = {str(row["part"]) for row in rows.values()}
        parts = [p for p in parts if p.name in named]
    checkable = [(sid, p.name) for p in parts for sid in p.sample_ids]
    in_source = {sid for sid, _ in checkable}
    names = {p.name for p in source.parts}
    unchecked: dict[int, str] = {}
    for sid, row in rows.items():
        if sid in in_source:
            continue
        part = str(row["part"])
        if source.kind != "extracted" and part in names:
            checkable.append((sid, part))  # the store holds a sample its part lacks: a difference
        else:
            unchecked[sid] = (
                "not in the extracted folder SRC"
                if source.kind == "extracted"
                else f"part {part} is not in SRC"
            )
    return checkable, unchecked


def _refuse_empty_objects(layout: Any) -> None:
    """A zero-byte object is never a valid shard or metadata file: name them all at once."""
    empty: list[str] = []
    for name in ARRAYS:
        folder = f"{layout.root.rstrip('/')}/{name}/c"
        try:
            found = layout.fs.find(folder, detail=True)
        except FileNotFoundError:
            continue
        empty += sorted(path for path, info in found.items() if info.get("size") == 0)
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise StoreError(
            f"store {layout.root} holds {len(empty)} empty shard object(s): {shown}; delete "
            "them and the metadata files of their shards (metadata/shard-NNNNNN.parquet), then "
            "rerun 'david-data convert' to rewrite them"
        )


def _check(
    reader: ShardReader, row: dict[str, Any] | None, sid: int, part: str, files: Any
) -> list[tuple[int, str, str]]:
    if row is None:
        return [(sid, "metadata", "no row in the store (shard not converted?)")]
    try:
        (arrays,) = reader.read([sid])
    except StoreError as exc:
        return [(sid, "arrays", str(exc))]
    try:  # decoded as the store holds it (float16 EXRs of a float32 store widened exactly)
        sample = decode_sample(
            sid,
            files,
            depth_dtype=reader.layout.dtypes["depth"],
            normal_dtype=reader.layout.dtypes["normal"],
        )
    except Exception as exc:  # noqa: BLE001 - any decode failure is this sample's (as in convert)
        found: list[tuple[int, str, str]] = []
        if row["status"] != STATUS_ERROR:
            found.append(
                (
                    sid,
                    "status",
                    f"source is unreadable ({exc}) but the store says {row['status']!r}",
                )
            )
        if arrays is not None:
            found.append((sid, "arrays", "an unreadable sample has arrays in the store"))
        return found
    if row["status"] == STATUS_OK and arrays is None:
        return [(sid, "arrays", missing_chunks(reader.layout, sid))]
    if row["status"] != STATUS_OK or arrays is None:
        return [
            (
                sid,
                "status",
                f"source decodes but the store has status {row['status']!r}: {row['error']}",
            )
        ]
    found = []
    for name in ARRAYS:
        want, got = sample.arrays()[name], arrays[name]
        if want.dtype != got.dtype or want.shape != got.shape:
            found.append(
                (sid, name, f"{got.dtype}{got.shape} in store, {want.dtype}{want.shape} in source")
            )
        elif want.tobytes() != got.tobytes():
            diff = int(np.count_nonzero(want.view(np.uint8) != got.view(np.uint8)))
            found.append((sid, name, f"{diff} bytes differ"))
    expected = sample_row(sample, part=part, part_sha256=None, shard=row["shard"])
    for column, value in expected.items():
        if column not in _SKIP_COLUMNS and not _same(value, row[column]):
            found.append((sid, column, f"store has {row[column]!r}, source gives {value!r}"))
    return found
