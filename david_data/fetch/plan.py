"""Plan a sample-level fetch: which members to fetch, in which ranged requests.

:func:`plan_fetch` catalogues the parts (cached, :mod:`david_data.catalog.catalog`), picks the samples
(:mod:`david_data.catalog.select`), looks at DEST (the manifest and the files), and groups the members
still missing into work units: per part, members sorted by offset, neighbours whose
records are less than ``max_gap`` bytes apart merged into one request, requests packed
into units of about ``unit_bytes`` (small enough that all ``jobs`` connections get
work). Nothing is transferred but HEADs and central directories; ``describe()`` is the
``--dry-run`` output, and resuming is planning again.

A sample the part lists without all five files is planned like any other (its files are
fetched) but marked with the files it lacks (:attr:`SampleWork.absent`): it can never
count as complete. Entries of a part that are not sample files are listed too
(:attr:`FetchPlan.stray_entries`); the run reports both.

A file counts as present only when its bytes give the member's size and CRC-32, read
again on every plan (:mod:`.check`; milliseconds for a subset): neither the manifest nor
the size is trusted, since a byte flipped at rest keeps both. A file that fails is
named in :attr:`FetchPlan.damaged` (as is one the manifest records and DEST lacks), and
planned like a missing one; the run removes it, fetches it again and reports it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .. import facts
from .._parse import parse_int
from .._sizes import human_bytes
from ..catalog.catalog import Catalog, CatalogSource, load_catalog, open_catalog_source
from ..catalog.directory import PartCatalog
from ..catalog.member import MemberTask
from ..catalog.reader import FetchRange, coalesce
from ..catalog.remote import PartVersion
from ..catalog.select import Selection, parts_for_ids, select_by_part
from ..engine.report import first_lines
from ..errors import ConfigError, DownloadError, NoInputsError
from ..fsutil import join, open_folder, refuse_zarr_folder, to_url
from ..net.retry import RetryPolicy
from ..settings import data_base_url
from .check import FileProblem, check_present, list_files
from .manifest import MANIFEST_NAME, load_fetch_manifest

logger = logging.getLogger(__name__)

KiB, MiB = 1 << 10, 1 << 20
COLUMNS_PARTS = 8
"""Most parts a fetch by ids alone catalogues as plain columns (cached as JSON, no
pyarrow to import); more parts, or a selection that needs SQL, as tables (Parquet).
Measured on real-size parts (25,000 members): a warm part's JSON loads in ~16 ms, its
Parquet in ~4 ms, and importing pyarrow costs ~90 ms: columns win up to about 8 parts."""


@dataclass(frozen=True, kw_only=True)
class FetchSettings:
    """Everything a fetch needs (plain values; what the CLI and the flow build)."""

    dest: str
    base_url: str
    parts: tuple[str, ...] | None = None
    """None: the parts expected to hold ``--ids``, else every part of the source."""
    selection: Selection = field(default_factory=Selection)
    jobs: int = 8
    """Requests in flight at once."""
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    """fsspec options for DEST (and for the source when it is a mirror)."""
    max_gap: int = 128 * KiB
    """Members closer than this are fetched in one request (the gap is downloaded)."""
    max_unit: int = 16 * MiB
    """Most bytes one work unit fetches."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.jobs <= 64:
            raise ConfigError(f"--jobs must be between 1 and 64 (got {self.jobs})")
        if self.parts is None and self.selection.empty:
            raise ConfigError(
                "choose samples with --where, --ids, --limit or --parts; fetching every sample "
                "of every part is the whole dataset: use 'david-data mirror --extract' for that"
            )
        if self.max_gap < 0 or self.max_unit < 1:
            raise ConfigError("max_gap must be >= 0 and max_unit positive")


def fetch_settings(
    dest: str,
    *,
    base_url: str | None = None,
    parts: str | int | None = None,
    where: str | None = None,
    ids: str | int | None = None,
    limit: str | int | None = None,
    seed: str | int | None = 0,
    jobs: str | int = 8,
    storage_options: dict[str, Any] | None = None,
) -> FetchSettings:
    """Settings from the plain values the CLI and the flow take (numbers may be strings;
    ``seed`` None is 0)."""
    return FetchSettings(
        dest=dest,
        base_url=base_url or data_base_url(),
        parts=tuple(facts.parse_parts(str(parts))) if parts not in (None, "") else None,
        selection=Selection(
            where=where,
            ids=None if ids is None else str(ids),
            limit=None if limit is None else parse_int("--limit", limit),
            seed=0 if seed is None else parse_int("--seed", seed),
        ),
        jobs=parse_int("--jobs", jobs),
        storage_options=dict(storage_options or {}),
    )


@dataclass(frozen=True, kw_only=True)
class FetchUnit:
    """Work unit: some ranges of one part, fetched one after the other on one connection."""

    part: str
    url: str
    version: PartVersion
    dest: str
    """Absolute URL of ``DEST/SynthHuman``."""
    ranges: tuple[FetchRange, ...]
    policy: RetryPolicy
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return f"fetch {self.part} {self.ranges[0].start}-{self.ranges[-1].end}"

    @property
    def nbytes(self) -> int:
        return sum(r.end - r.start + 1 for r in self.ranges)


@dataclass(frozen=True, kw_only=True)
class SampleWork:
    """One chosen sample: its members in the catalogued part, and those still missing."""

    sample_id: int
    part: str
    members: tuple[MemberTask, ...]
    missing: frozenset[str]
    """File names (``rgb_0000123.png``) to fetch."""
    absent: frozenset[str] = frozenset()
    """File names of the sample the part does not list: it can never be complete."""

    @property
    def scenario(self) -> str:
        return facts.scenario_of(self.sample_id) if self.sample_id < facts.NUM_SAMPLES else "?"

    @property
    def bytes_total(self) -> int:
        return sum(m.compressed_size for m in self.members)

    @property
    def bytes_missing(self) -> int:
        return sum(m.compressed_size for m in self.members if m.file_name in self.missing)


@dataclass(frozen=True, kw_only=True)
class FetchPlan:
    settings: FetchSettings
    source: CatalogSource
    catalog: Catalog = field(repr=False)
    dest_url: str
    samples: tuple[SampleWork, ...]
    units: tuple[FetchUnit, ...]
    tables: bool = True
    """The parts were catalogued as tables (else as plain columns): parts read again
    during the run are catalogued the same way."""
    damaged: tuple[FileProblem, ...] = ()
    """Files of the chosen samples that DEST holds (or the manifest records) and that
    fail their check: planned as missing, removed and fetched again by the run."""

    @property
    def files_dir(self) -> str:
        return join(self.dest_url, facts.EXTRACT_FOLDER)

    @property
    def bytes_to_fetch(self) -> int:
        return sum(s.bytes_missing for s in self.samples)

    @property
    def bytes_present(self) -> int:
        return sum(s.bytes_total - s.bytes_missing for s in self.samples)

    @property
    def requests(self) -> int:
        return sum(len(u.ranges) for u in self.units)

    @property
    def stray_entries(self) -> tuple[tuple[str, str], ...]:
        """``(part, entry name)`` of the catalogued parts' entries that are not sample files."""
        return tuple((p.name, n) for p in self.catalog.parts for n in p.unparsed)

    def describe(self) -> str:
        """Samples, bytes to fetch and bytes present, per scenario (the dry run)."""
        rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for s in self.samples:
            row = rows[s.scenario]
            row[0] += 1
            row[1] += bool(s.missing)
            row[2] += s.bytes_missing
            row[3] += s.bytes_total - s.bytes_missing
        lines = [
            f"fetch {len(self.samples)} samples from {self.source.base} into {self.dest_url}",
            "",
            f"{'scenario':<12}{'samples':>9}{'to fetch':>10}{'bytes to fetch':>16}{'present':>12}",
        ]
        for scenario in sorted(rows):
            n, todo, missing, present = rows[scenario]
            lines.append(
                f"{scenario:<12}{n:>9}{todo:>10}{human_bytes(missing):>16}{human_bytes(present):>12}"
            )
        todo_samples = sum(bool(s.missing) for s in self.samples)
        incomplete = [s for s in self.samples if s.absent]
        lines += [
            f"{'total':<12}{len(self.samples):>9}{todo_samples:>10}"
            f"{human_bytes(self.bytes_to_fetch):>16}{human_bytes(self.bytes_present):>12}",
            "",
            f"{len(self.catalog.parts)} part(s) catalogued, {self.requests} ranged request(s) "
            f"in {len(self.units)} unit(s), {self.settings.jobs} at once",
        ]
        lines += [
            f"sample {s.sample_id} is incomplete in {s.part}: it lacks {', '.join(sorted(s.absent))}"
            for s in incomplete
        ]
        lines += [
            f"{part}: entry {name!r} is not a SynthHuman sample file"
            for part, name in self.stray_entries
        ]
        if self.damaged:
            lines.append(
                f"{len(self.damaged)} file(s) at DEST failed their check and are fetched again:"
            )
            lines += first_lines(self.damaged, 20, lambda p: f"  {p.name}: {p.detail}")
        return "\n".join(lines)


def plan_fetch(settings: FetchSettings) -> FetchPlan:
    """Catalogue, select, compare with DEST and group the missing members into units."""
    fs, root = open_folder(settings.dest, settings.storage_options)
    if fs.isfile(root):
        raise ConfigError(f"DEST {settings.dest} is a file; give a folder (it may not exist yet)")
    refuse_zarr_folder(fs, root, "DEST")
    source = open_catalog_source(settings.base_url, settings.storage_options)
    parts = _parts(settings, source)
    tables = not settings.selection.ids_alone or len(parts) > COLUMNS_PARTS
    catalog = load_catalog(source, parts, policy=settings.policy, table=tables)
    if catalog.errors:
        reasons = "; ".join(f"{name}: {why}" for name, why in catalog.errors)
        raise DownloadError(
            f"cannot catalogue {len(catalog.errors)} part(s) of {source.base}: {reasons}; "
            "check --base-url and --parts, then rerun"
        )
    wanted = select_by_part(catalog, settings.selection)
    if not wanted:
        raise NoInputsError(
            f"the selection matches no sample of {', '.join(p.name for p in catalog.parts)}; "
            "try the condition with 'david-data catalog \"SELECT * FROM samples WHERE ...\"' "
            "and check --parts"
        )
    dest_url = to_url(fs, root)
    manifest = load_fetch_manifest(fs, root, source.base)
    on_disk = list_files(fs, join(root, facts.EXTRACT_FOLDER))
    recorded: dict[str, tuple[int, int]] = {}
    for record in manifest.samples.values():
        recorded.update(record.files)
    samples: list[SampleWork] = []
    damaged: list[FileProblem] = []
    folder = join(root, facts.EXTRACT_FOLDER)
    for part in catalog.parts:
        if part.name in wanted:
            members = part.members_of(wanted[part.name])
            expected = {m.file_name: (m.size, m.crc32) for ms in members.values() for m in ms}
            known, problems = check_present(
                fs, folder, expected, on_disk, recorded, jobs=settings.jobs
            )
            damaged += problems
            samples += part_work(part, wanted[part.name], known, members)
    for problem in damaged[:20]:
        logger.warning("%s at DEST: %s; it is fetched again", problem.name, problem.detail)
    if len(damaged) > 20:
        logger.warning("... and %d more files at DEST that failed their check", len(damaged) - 20)
    plan_samples = tuple(sorted(samples, key=lambda s: s.sample_id))
    return FetchPlan(
        settings=settings,
        source=source,
        catalog=catalog,
        dest_url=dest_url,
        samples=plan_samples,
        units=make_units(
            settings, source, catalog, plan_samples, join(dest_url, facts.EXTRACT_FOLDER)
        ),
        tables=tables,
        damaged=tuple(damaged),
    )


def _parts(settings: FetchSettings, source: CatalogSource) -> list[str]:
    if settings.parts is not None:
        return list(settings.parts)
    if settings.selection.ids is not None:
        expected = parts_for_ids(settings.selection.ids)
        if source.http:
            return expected
        present = set(source.default_parts())
        return [p for p in expected if p in present] or sorted(present)
    return source.default_parts()


def part_work(
    part: PartCatalog,
    sample_ids: list[int],
    known: dict[str, tuple[int, int]],
    members: dict[int, list[MemberTask]] | None = None,
) -> list[SampleWork]:
    """What each sample of ``part`` still needs, given the (size, CRC-32) of files known
    to be on disk."""
    members = members if members is not None else part.members_of(sample_ids)
    work = []
    for sid in sample_ids:
        tasks = tuple(members.get(sid, ()))
        missing = frozenset(
            t.file_name for t in tasks if known.get(t.file_name) != (t.size, t.crc32)
        )
        absent = frozenset(facts.sample_member_names(sid).values()) - {t.file_name for t in tasks}
        work.append(
            SampleWork(
                sample_id=sid,
                part=part.name,
                members=tasks,
                missing=missing,
                absent=absent if tasks else frozenset(),
            )
        )
    return work


def unit_bytes(settings: FetchSettings, total: int) -> int:
    """Target size of a unit: enough units for every connection, at most ``max_unit``."""
    return max(min(MiB, settings.max_unit), min(settings.max_unit, total // (settings.jobs * 4)))


def make_units(
    settings: FetchSettings,
    source: CatalogSource,
    catalog: Catalog,
    samples: tuple[SampleWork, ...] | list[SampleWork],
    dest: str,
) -> tuple[FetchUnit, ...]:
    """Group the missing members into coalesced ranges, and ranges into units."""
    todo: dict[str, list[MemberTask]] = defaultdict(list)
    for s in samples:
        todo[s.part] += [m for m in s.members if m.file_name in s.missing]
    total = sum(m.end_offset - m.offset for tasks in todo.values() for m in tasks)
    target = unit_bytes(settings, total)
    units: list[FetchUnit] = []
    for part in catalog.parts:
        if not todo.get(part.name):
            continue
        ranges = coalesce(todo[part.name], settings.max_gap, target)
        batch: list[FetchRange] = []
        for rng in ranges:
            if batch and sum(r.end - r.start + 1 for r in batch) + rng.end - rng.start + 1 > target:
                units.append(_unit(settings, source, part, dest, batch))
                batch = []
            batch.append(rng)
        if batch:
            units.append(_unit(settings, source, part, dest, batch))
    return tuple(units)


def _unit(
    settings: FetchSettings,
    source: CatalogSource,
    part: PartCatalog,
    dest: str,
    ranges: list[FetchRange],
) -> FetchUnit:
    return FetchUnit(
        part=part.name,
        url=part.url,
        version=part.version,
        dest=dest,
        ranges=tuple(ranges),
        policy=settings.policy,
        storage_options=settings.storage_options,
    )


__all__ = [
    "MANIFEST_NAME",
    "FetchPlan",
    "FetchRange",
    "FetchSettings",
    "FetchUnit",
    "SampleWork",
    "fetch_settings",
    "make_units",
    "part_work",
    "plan_fetch",
]
