"""Plan a conversion: check everything, then list the shards to write, as plain data.

:func:`plan_convert` validates the settings, the source and the STORE (see
:mod:`.destination`) before anything is written, reads the parts' zip directories, and
decides per shard: new, committed (skipped), or written again because a part it came
from changed since (its recorded ``part_sha256`` differs from the part's checksum, or
from its ETag for a part read from an HTTP host), it lacks ids the source now holds, or
it holds ``status='error'`` samples and ``retry_errors`` is set. A part whose zip cannot be read is listed as bad; the rest is
planned. A sample id held by two parts with different content is a conflict: recorded
as an error naming both parts, kept from neither. The store's pixel types are chosen
here from the first sample of every part to write (widest wins; a store that already
exists must be at least as wide).

A selection (``where``, ``ids``, ``limit``/``seed``, :mod:`.selection`) keeps only the
chosen samples of the selected parts: the store is sparse, its metadata rows are exactly
the samples converted. A committed shard written again keeps the samples it holds, so a
store converted in several selections holds all of them.

A shard covers sample ids ``K*S ... K*S+S-1`` and normally lies inside one part (S
divides 5000). Should two parts hold ids of one shard, the plan makes ONE job reading
from both, so each shard still has exactly one writer; neighbouring parts of the source
(index +-1) are read too, so such a shard is complete whichever ``--parts`` are chosen.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import facts
from .._parse import parse_int
from ..engine.report import first_lines
from ..errors import (
    ConfigError,
    DownloadError,
    RangeNotSupportedError,
    StoreError,
    VerificationError,
)
from ..format.codecs import DEFAULT_PROFILE, PROFILES
from ..format.layout import DEFAULT_SHARD_SIZE, StoreLayout
from ..format.metadata import STATUS_ERROR, STATUS_OK
from ..fsutil import resolve, to_url
from ..net.http import is_http
from ..sources.base import PartSource, Source
from ..sources.parts import PartRef, RawFiles
from ..sources.resolve import open_source
from .destination import Destination, check_destination
from .parts import checksums, pixel_types, widest
from .selection import describe_selection, make_selection, parts_for, select_ids
from .units import ShardGroup, ShardJob

if TYPE_CHECKING:
    from ..net.retry import RetryPolicy

logger = logging.getLogger(__name__)

GROUP_SAMPLES = 500
"""Samples per work unit at most (5 shards of 100): units are few enough for Prefect and
Dask to track, small enough to spread over workers and to lose little when a worker dies."""
_SHOWN = 10


@dataclass(frozen=True, kw_only=True)
class ConvertSettings:
    """What a conversion is asked to do (``None``: the existing store's value, else the default)."""

    source_url: str
    store_url: str
    parts: tuple[str, ...] | None = None
    """Part file names to convert; None = every part in the source."""
    profile: str | None = None
    shard_size: int | None = None
    workers: int = 1
    retry_errors: bool = False
    storage_options: dict[str, Any] | None = None
    """fsspec options for the STORE."""
    source_options: dict[str, Any] | None = None
    """fsspec options for the source."""
    where: str | None = None
    """SQL condition on the catalog's ``samples`` view: convert only the samples it keeps."""
    ids: str | None = None
    """Sample ids and ranges to convert, e.g. ``0-999,120000``."""
    limit: int | None = None
    """Convert this many of the selected samples, drawn at random with ``seed``."""
    seed: int = 0
    policy: RetryPolicy | None = None
    """Retries of requests to an HTTP source (None: the default :class:`RetryPolicy`)."""

    @property
    def selection(self) -> str:
        """The selection as options (empty: every sample of the parts)."""
        return describe_selection(self.where, self.ids, self.limit, self.seed)


def convert_settings(
    source_url: str,
    store_url: str,
    *,
    parts: str | int | Sequence[str] | None = None,
    profile: str | None = None,
    shard_size: str | int | None = None,
    workers: str | int = 1,
    retry_errors: bool = False,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
    where: str | None = None,
    ids: str | int | None = None,
    limit: str | int | None = None,
    seed: str | int = 0,
    policy: RetryPolicy | None = None,
) -> ConvertSettings:
    """Settings from parameters as a command line or a deployment gives them: numbers may
    be strings, ``parts`` a selection such as ``'0-3,7'``, ``'sample'`` or ``'all'``;
    ``policy``: retries of requests to an HTTP source (default: :class:`RetryPolicy`)."""
    if isinstance(parts, str | int):
        spec = str(parts)
        names: tuple[str, ...] | None = (
            None if spec.strip().lower() in ("", "all") else tuple(facts.parse_parts(spec))
        )
    else:
        names = tuple(parts) if parts is not None else None
    return ConvertSettings(
        source_url=source_url,
        store_url=store_url,
        parts=names,
        profile=profile or None,
        shard_size=parse_int("--shard-size", shard_size) if shard_size not in (None, "") else None,
        workers=parse_int("--workers", workers),
        retry_errors=bool(retry_errors),
        storage_options=dict(storage_options) if storage_options else None,
        source_options=dict(source_options) if source_options else None,
        where=where if where not in (None, "") else None,
        ids=str(ids) if ids not in (None, "") else None,
        limit=parse_int("--limit", limit) if limit not in (None, "") else None,
        seed=parse_int("--seed", seed) if seed not in (None, "") else 0,
        policy=policy,
    )


@dataclass(frozen=True, kw_only=True)
class ConvertPlan:
    """Plain data: what a conversion will do. ``describe()`` is the ``--dry-run`` output."""

    settings: ConvertSettings
    """The settings, with absolute URLs."""
    profile: str
    shard_size: int
    dtypes: dict[str, str]
    """Pixel types of ``depth`` and ``normal`` (empty when nothing is to be written)."""
    store_exists: bool
    parts: tuple[str, ...]
    """Selected parts whose directories could be read."""
    part_refs: dict[str, PartRef]
    """Every part the jobs read from, with its SHA-256."""
    bad_parts: tuple[tuple[str, str], ...] = ()
    """``(part, reason)`` of selected parts that cannot be read; not converted."""
    jobs: tuple[ShardJob, ...] = ()
    committed: tuple[int, ...] = ()
    """Shards already committed and up to date (skipped)."""
    samples_in_parts: int = 0
    selected: int | None = None
    """How many samples of the selected parts the selection keeps (None: no selection)."""
    checksum_records: dict[str, bytes] = field(default_factory=dict, repr=False)
    """``parts/NAME.json`` records of checksums computed while planning (written by the run)."""

    @property
    def selection_line(self) -> str:
        """``N of M samples selected (--ids ...)``; empty without a selection."""
        if self.selected is None:
            return ""
        return (
            f"{self.selected:,} of {self.samples_in_parts:,} samples selected "
            f"({self.settings.selection})"
        )

    @property
    def samples_to_write(self) -> int:
        return sum(len(j.sample_ids) for j in self.jobs)

    @property
    def conflicts(self) -> list[tuple[int, str, str]]:
        return [c for j in self.jobs for c in j.conflicts]

    def jobs_by_part(self) -> dict[str, list[ShardJob]]:
        groups: dict[str, list[ShardJob]] = defaultdict(list)
        for job in self.jobs:
            groups[job.part].append(job)
        return dict(groups)

    def units(self, workers: int) -> list[ShardGroup]:
        """The work units: runs of at most ``GROUP_SAMPLES`` samples' shards of one part,
        smaller when there are few shards, so that every worker gets some."""
        per_unit = max(
            1,
            min(
                GROUP_SAMPLES // self.shard_size, math.ceil(len(self.jobs) / (2 * max(1, workers)))
            ),
        )
        units: list[ShardGroup] = []
        for jobs in self.jobs_by_part().values():
            for i in range(0, len(jobs), per_unit):
                chunk = tuple(jobs[i : i + per_unit])
                names = sorted(
                    {n for j in chunk for n in j.parts}
                    | {p for j in chunk for _, p, _ in j.conflicts}
                )
                units.append(
                    ShardGroup(
                        store_url=self.settings.store_url,
                        parts=tuple(self.part_refs[n] for n in names),
                        jobs=chunk,
                        storage_options=self.settings.storage_options,
                        source_options=self.settings.source_options,
                    )
                )
        return units

    def describe(self) -> str:
        s = self.settings
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.dtypes.items()))
        lines = [
            f"convert {s.source_url} -> {s.store_url} ({'existing' if self.store_exists else 'new'} "
            f"store, profile {self.profile}, {self.shard_size} samples/shard{', ' + types if types else ''})",
            f"parts: {len(self.parts)}, samples in them: {self.samples_in_parts:,}",
        ]
        if self.selection_line:
            lines.append(f"selection: {self.selection_line}; the store holds only those")
        if self.bad_parts:
            lines.append(f"unreadable parts (not converted): {len(self.bad_parts)}")
            lines += [f"  {name}: {reason}" for name, reason in self.bad_parts]
        conflicts = self.conflicts
        if conflicts:
            lines.append(
                f"sample ids in two parts with different content (kept from neither): {len(conflicts)}"
            )
            lines += [f"  {reason}" for _, _, reason in conflicts[:_SHOWN]]
        lines += [
            f"shards already committed (skipped): {len(self.committed)}",
            f"shards to write: {len(self.jobs)} ({self.samples_to_write:,} samples)",
        ]
        for part, jobs in self.jobs_by_part().items():
            shards = [j.shard for j in jobs]
            lines.append(
                f"  {part}: {len(jobs)} shards ({min(shards)}-{max(shards)}), "
                f"{sum(len(j.sample_ids) for j in jobs):,} samples"
            )
        again = [j for j in self.jobs if j.reason]
        if again:
            lines.append(f"shards written again: {len(again)}")
            lines += first_lines(again, _SHOWN, lambda j: f"  shard {j.shard}: {j.reason}")
        return "\n".join(lines)


def plan_convert(settings: ConvertSettings) -> ConvertPlan:
    """Validate ``settings`` and plan the shards to write (see the module docstring).
    Raises ConfigError/StoreError for anything that makes the run impossible; writes nothing."""
    settings = _checked(settings)
    selection = make_selection(settings.where, settings.ids, settings.limit, settings.seed)
    source = open_source(settings.source_url, settings.source_options, policy=settings.policy)
    dest = check_destination(
        settings.store_url, settings.source_url, settings.storage_options, settings.source_options
    )
    profile, shard_size = _store_settings(settings, dest)
    selected = source.select(_part_names(settings, source, parts_for(selection)))
    bad = _read_directories(selected)
    good = [p for p in selected if p.name not in bad]
    if source.kind == "http" and bad and not good:
        name, reason = next(iter(bad.items()))
        raise DownloadError(
            f"cannot read any part from {source.url} ({name}: {reason}); check the URL and "
            "--parts, then rerun",
            url=source.url,
        )
    wanted: set[int] | None = None
    if selection is not None:
        unreadable = "".join(f"; {n} is unreadable ({why})" for n, why in bad.items())
        wanted = set(select_ids(good, selection, settings.source_url, unreadable))
    layout = dest.layout
    committed = layout.committed_shards() if layout is not None else set()
    # A selection never takes a neighbour's samples; they matter only to keep those a
    # committed shard already holds.
    neighbours = _neighbours(source, good) if wanted is None or committed else []
    bad_neighbours = _read_directories(neighbours)
    for name, reason in bad_neighbours.items():
        logger.warning(
            "neighbouring part %s cannot be read (%s); its ids are left out", name, reason
        )
    readable = good + [p for p in neighbours if p.name not in bad_neighbours]
    assignment = _assign(readable, {p.name for p in good}, shard_size, settings.source_url)
    rows = _committed_rows(layout, sorted(committed & assignment.shards))
    if wanted is not None:
        assignment = _keep_selected(assignment, wanted, rows)
    by_name = {p.name: p for p in readable}
    involved = [p for p in readable if p.name in assignment.parts_used]
    shas, records = checksums(involved, layout)
    jobs: list[ShardJob] = []
    skipped: list[int] = []
    for shard in sorted(assignment.shards):
        sources = assignment.by_shard.get(shard, {})
        conflicts = assignment.conflicts.get(shard, [])
        reason = ""
        if shard in committed:
            reason = _rewrite_reason(
                rows.get(shard, []),
                sources,
                conflicts,
                shas,
                settings.retry_errors,
                selecting=wanted is not None,
            )
            if not reason:
                skipped.append(shard)
                continue
        jobs.append(
            ShardJob(
                shard=shard,
                sources=tuple(
                    (name, tuple(by_name[name].locate(ids))) for name, ids in sources.items()
                ),
                conflicts=tuple(conflicts),
                reason=reason,
            )
        )
    writing = sorted({n for j in jobs for n in j.parts})
    first: dict[str, list[int]] = defaultdict(list)
    for job in jobs:
        for name, samples in job.sources:
            first[name] += [s.sample_id for s in samples]
    dtypes, probed = _pixel_types([by_name[n] for n in writing], dest, first)
    jobs = [_with_preread(job, probed) for job in jobs]
    return ConvertPlan(
        settings=settings,
        profile=profile,
        shard_size=shard_size,
        dtypes={k: np.dtype(v).name for k, v in dtypes.items()},
        store_exists=layout is not None,
        parts=tuple(p.name for p in good),
        part_refs={p.name: p.ref(shas.get(p.name)) for p in involved},
        bad_parts=tuple((p.name, bad[p.name]) for p in selected if p.name in bad),
        jobs=tuple(jobs),
        committed=tuple(skipped),
        samples_in_parts=assignment.samples_in_selected,
        selected=len(wanted) if wanted is not None else None,
        checksum_records=records,
    )


def _part_names(
    settings: ConvertSettings, source: Source, expected: list[str] | None
) -> list[str] | None:
    """The parts to read: ``--parts``; else those expected to hold ``--ids`` (the ones the
    source has); else all (on a host: the 60 numbered parts). None: all of the source."""
    if settings.parts is not None:
        return list(settings.parts)
    if source.kind == "http":
        return expected or facts.all_part_names()
    present = {p.name for p in source.parts}
    chosen = [n for n in expected or () if n in present]
    return chosen or None


def _keep_selected(
    assignment: _Assignment, wanted: set[int], rows: dict[int, list[dict[str, Any]]]
) -> _Assignment:
    """Only the selected ids, plus those a committed shard already holds (a shard written
    again keeps them); shards left without ids are dropped."""

    def keep(shard: int, sid: int) -> bool:
        return sid in wanted or sid in held.get(shard, set())

    held = {shard: {r["sample_id"] for r in shard_rows} for shard, shard_rows in rows.items()}
    by_shard: dict[int, dict[str, list[int]]] = {}
    for shard, sources in assignment.by_shard.items():
        kept = {n: [i for i in ids if keep(shard, i)] for n, ids in sources.items()}
        kept = {n: ids for n, ids in kept.items() if ids}
        if kept:
            by_shard[shard] = kept
    conflicts = {
        shard: [c for c in items if keep(shard, c[0])]
        for shard, items in assignment.conflicts.items()
    }
    return _Assignment(
        by_shard=by_shard,
        conflicts={shard: items for shard, items in conflicts.items() if items},
        samples_in_selected=assignment.samples_in_selected,
    )


def _checked(settings: ConvertSettings) -> ConvertSettings:
    """Check the plain values and make both URLs absolute (units run on other machines)."""
    make_selection(settings.where, settings.ids, settings.limit, settings.seed)
    if settings.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {settings.workers}")
    size = settings.shard_size
    if size is not None and (size < 1 or facts.SAMPLES_PER_PART % size):
        raise ConfigError(
            f"--shard-size {size} must be a positive divisor of {facts.SAMPLES_PER_PART} so "
            "that shards line up with parts: e.g. 50, 100 (the default), 125, 200 or 250"
        )
    if settings.profile is not None and settings.profile not in PROFILES:
        raise ConfigError(
            f"unknown profile {settings.profile!r}; choose one of {', '.join(PROFILES)}"
        )
    source_url = settings.source_url
    if not is_http(source_url):
        source_url = to_url(*resolve(source_url, settings.source_options))
    elif not source_url.lower().endswith(".zip"):
        source_url = source_url.rstrip("/") + "/"
    return replace(
        settings,
        source_url=source_url,
        store_url=to_url(*resolve(settings.store_url, settings.storage_options)),
    )


def _store_settings(settings: ConvertSettings, dest: Destination) -> tuple[str, int]:
    """Profile and shard size: the existing store's (asking for others is an error)."""
    attrs = dest.attributes
    if attrs is None:
        return settings.profile or DEFAULT_PROFILE, settings.shard_size or DEFAULT_SHARD_SIZE
    profile, size = str(attrs.get("profile")), int(attrs.get("shard_size", 0))
    if settings.profile is not None and settings.profile != profile:
        raise ConfigError(
            f"STORE {dest.url} is a '{profile}' store; --profile {settings.profile} cannot "
            "change that: drop --profile to add to it, or convert into a new STORE"
        )
    if settings.shard_size is not None and settings.shard_size != size:
        raise ConfigError(
            f"STORE {dest.url} has {size} samples per shard; --shard-size {settings.shard_size} "
            "cannot change that: drop --shard-size to add to it, or convert into a new STORE"
        )
    return profile, size


def _read_directories(parts: list[PartSource]) -> dict[str, str]:
    """Read each part's zip directory (in threads: remote reads wait on the network);
    return ``{part: reason}`` of those that cannot be read."""

    def read(part: PartSource) -> str | None:
        try:
            part.load()
        except RangeNotSupportedError:
            raise  # the whole source is unusable, not this part
        except (VerificationError, OSError) as exc:
            if getattr(exc, "first_contact", False):
                raise  # the host was never reached: so is every part
            return str(exc)
        return None

    with cf.ThreadPoolExecutor(max(1, min(8, len(parts)))) as pool:
        reasons = list(pool.map(read, parts))
    return {p.name: r for p, r in zip(parts, reasons, strict=True) if r is not None}


def _neighbours(source: Source, selected: list[PartSource]) -> list[PartSource]:
    chosen = {p.name for p in selected}
    indices = {facts.part_index(p.name) for p in selected} - {None}
    wanted = {i + d for i in indices if i is not None for d in (-1, 1)}
    return [p for p in source.parts if p.name not in chosen and facts.part_index(p.name) in wanted]


@dataclass(kw_only=True)
class _Assignment:
    by_shard: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    conflicts: dict[int, list[tuple[int, str, str]]] = field(default_factory=dict)
    samples_in_selected: int = 0

    @property
    def shards(self) -> set[int]:
        return set(self.by_shard) | set(self.conflicts)

    @property
    def parts_used(self) -> set[str]:
        used = {name for sources in self.by_shard.values() for name in sources}
        return used | {p for items in self.conflicts.values() for _, p, _ in items}


def _assign(
    parts: list[PartSource], selected: set[str], shard_size: int, source_url: str
) -> _Assignment:
    """Which part each sample id is taken from, by shard; ids in two parts with
    different content are conflicts (same content: taken once)."""
    by_part = {p.name: p for p in parts}
    owner: dict[int, str] = {}
    holders: dict[int, list[str]] = {}
    by_shard: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    counted = 0
    for part in parts:
        is_selected = part.name in selected
        for sid in part.sample_ids:
            if not 0 <= sid < facts.NUM_SAMPLES:
                logger.warning("%s: sample id %d is out of range; skipped", part.url, sid)
                continue
            shard = sid // shard_size
            if not is_selected and shard not in by_shard:
                continue  # a neighbour's own shards are not part of this run
            if sid in owner:
                first = owner[sid]
                key = by_part[first].content_key(sid)
                if key is not None and key == part.content_key(sid):
                    logger.info(
                        "sample %d is in %s and %s, identical; taken once", sid, first, part.name
                    )
                else:
                    holders.setdefault(sid, [first]).append(part.name)
                continue
            owner[sid] = part.name
            by_shard[shard][part.name].append(sid)
            counted += is_selected
    out = _Assignment(samples_in_selected=counted)
    for sid, names in holders.items():
        shard = sid // shard_size
        sources = by_shard[shard]
        sources[names[0]].remove(sid)
        if not sources[names[0]]:
            del sources[names[0]]
        reason = (
            f"sample {sid} is in {' and '.join(names)} with different content; neither copy is "
            f"kept: check the parts with 'david-data verify {source_url}', re-mirror the wrong "
            "one, then rerun with --retry-errors"
        )
        out.conflicts.setdefault(shard, []).append((sid, names[0], reason))
    out.by_shard = {
        s: {n: ids for n, ids in parts.items()} for s, parts in by_shard.items() if parts
    }
    return out


def _committed_rows(
    layout: StoreLayout | None, shards: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """``sample_id, part, part_sha256, status`` rows of committed shards, by shard (read
    through the store's consolidated metadata: one file, not one per shard)."""
    if layout is None or not shards:
        return {}
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..format.consolidated import read_metadata

    table = read_metadata(layout).select(["sample_id", "part", "part_sha256", "status", "shard"])
    table = table.filter(pc.is_in(table["shard"], value_set=pa.array(shards, pa.int64())))
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in table.to_pylist():
        out[row["shard"]].append(row)
    return out


def _rewrite_reason(
    rows: list[dict[str, Any]],
    sources: dict[str, list[int]],
    conflicts: list[tuple[int, str, str]],
    shas: dict[str, str | None],
    retry_errors: bool,
    *,
    selecting: bool = False,
) -> str:
    """Why a committed shard must be written again ('' when it is up to date)."""
    recorded = {r["sample_id"]: r for r in rows}
    planned = {sid for ids in sources.values() for sid in ids} | {sid for sid, _, _ in conflicts}
    for name in sources:
        sha = shas.get(name)
        if sha and any(r["part"] == name and r["part_sha256"] != sha for r in rows):
            return f"{name} changed since the shard was written"
    if planned - set(recorded):
        return "it lacks selected samples" if selecting else "it lacks samples the source now holds"
    if any(recorded[sid]["status"] == STATUS_OK for sid, _, _ in conflicts):
        return "it holds a sample now found in two parts with different content"
    if retry_errors and any(r["status"] == STATUS_ERROR for r in rows):
        return "it holds samples recorded as errors (--retry-errors)"
    return ""


def _with_preread(job: ShardJob, probed: dict[str, tuple[int, RawFiles]]) -> ShardJob:
    """The job, carrying the probe samples it converts (read once, by the plan)."""
    preread = tuple(
        probed[name]
        for name, samples in job.sources
        if name in probed and any(s.sample_id == probed[name][0] for s in samples)
    )
    return replace(job, preread=preread) if preread else job


def _pixel_types(
    parts: list[PartSource], dest: Destination, first: dict[str, list[int]]
) -> tuple[dict[str, np.dtype], dict[str, tuple[int, RawFiles]]]:
    """The store's depth/normal pixel types: the existing store's (which must hold every
    part to write exactly) or, for a new store, the widest the parts need (probed on the
    ids in ``first`` before the parts' first samples: with a selection, samples that are
    read anyway). Also, by part on an HTTP host, the probe sample's id and files, so that
    the run does not read them from the host a second time."""
    if not parts:
        kept = {a: dest.layout.dtypes[a] for a in ("depth", "normal")} if dest.layout else {}
        return kept, {}

    def probe(
        part: PartSource,
    ) -> tuple[dict[str, np.dtype] | None, tuple[int, RawFiles] | None]:
        return pixel_types(part, first=first.get(part.name, ()))

    with cf.ThreadPoolExecutor(max(1, min(8, len(parts)))) as pool:
        results = dict(zip([p.name for p in parts], pool.map(probe, parts), strict=True))
    found = {name: types for name, (types, _) in results.items()}
    probed: dict[str, tuple[int, RawFiles]] = {}
    for part in parts:
        sample = results[part.name][1]
        if sample is not None and part.kind == "http":
            probed[part.name] = sample
    needed = {name: types for name, types in found.items() if types is not None}
    if dest.layout is not None:
        have = dest.layout.dtypes
        for array in ("depth", "normal"):
            wider = sorted(
                n for n, t in needed.items() if np.dtype(t[array]).itemsize > have[array].itemsize
            )
            if wider:
                kind = np.dtype(needed[wider[0]][array]).name
                raise ConfigError(
                    f"STORE {dest.url} holds {array} as {have[array].name}, but "
                    f"{', '.join(wider)} {'has' if len(wider) == 1 else 'have'} {kind} EXRs, "
                    f"which {have[array].name} cannot hold exactly; convert every part into a new "
                    f"STORE (it will hold {kind}, which keeps {have[array].name} values exactly), "
                    "or leave these parts out with --parts"
                )
        return {a: have[a] for a in ("depth", "normal")}, probed
    if not needed:
        raise StoreError(
            f"no decodable sample among the first samples of {', '.join(p.name for p in parts)}; "
            "cannot tell the EXR pixel types: check the source with 'david-data verify'",
            path=dest.url,
        )
    return widest(needed), probed


def check_convert_settings(settings: ConvertSettings) -> ConvertSettings:
    """What :func:`plan_convert` checks without reading the source (which may not exist
    yet, e.g. before a pipeline mirrors it): the plain values, and that STORE may be
    written with this profile and shard size. Returns the settings with absolute URLs."""
    settings = _checked(settings)
    dest = check_destination(
        settings.store_url, settings.source_url, settings.storage_options, settings.source_options
    )
    _store_settings(settings, dest)
    return settings
