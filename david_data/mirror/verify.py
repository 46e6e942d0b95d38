"""``david-data verify DEST``: re-check a mirror against its manifest.

Full mode re-reads every part once: size, SHA-256 (which covers every byte, as recorded
when the part was mirrored and checked against the server), every member's CRC-32, each
local header against the central directory, and the member set. ``quick`` checks
presence, size, the central directory and the member set (reads only each zip's tail).

The report sorts files into good, corrupt, missing and unexpected, names the part and
the member of each problem, lists leftovers of an interrupted run separately, and looks
at the mirror as a whole: sample ids held by two parts, and, once all 60 parts are
there, ids missing from 0 … 298,007 (otherwise it names the parts still absent).

What it finds is recorded in the manifest (see :mod:`.manifest`): a corrupt or missing
part is moved to ``suspect``, so the next ``david-data mirror`` fetches exactly those.

A job of the engine (:mod:`david_data.engine`): :func:`plan_verify` (settings -> plain
plan), then :func:`run_verify` (plan, executor -> report), one unit per part
(:func:`verify_unit`), on threads of this process or a Dask cluster. Every recorded part
ends good, corrupt, missing or, when the run is interrupted, ``unchecked``, by name.

``david-data verify`` takes a fetch folder too (``fetch-manifest.json``, no
``manifest.json``): :func:`plan_folder_verify` and :func:`run_folder_verify`, the job's
entry points, hand it to :mod:`david_data.fetch.verify`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import facts
from ..engine import Executor, make_executor, run_units
from ..engine.report import first_lines, markdown_table
from ..errors import ConfigError, JobInterrupted, LockedError
from ..fsutil import STAGING_SUFFIX, Files, is_local, join, open_folder, to_url
from ..progress import NullProgress, Progress
from .lock import LOCK_NAME, hold_lock
from .manifest import (
    MANIFEST_NAME,
    Manifest,
    PartRecord,
    compact_ranges,
    expand_ranges,
    load_manifest,
    record_suspects,
)
from .plan import MAX_JOBS
from .promote import scratch_dir_for
from .zipcheck import check_zip

if TYPE_CHECKING:
    from ..fetch.verify import FetchVerifyPlan, FetchVerifyReport

logger = logging.getLogger(__name__)

EXECUTOR: Literal["threads", "processes"] = "threads"
"""Where this machine runs the units (I/O-bound: hashing releases the GIL, reads wait on
storage); :mod:`david_data.jobs` reads it."""

_PARTIAL_SUFFIXES = (".part", ".state", ".tmp", STAGING_SUFFIX, ".lock")
OUT_OF_PROCESS_GRACE = 2.0
"""Seconds a stop waits for parts being checked on other machines (they cannot see the
stop flag; a part not finished is reported unchecked)."""
STOPPED = "not checked: the run was interrupted"


@dataclass(frozen=True, kw_only=True)
class FileVerdict:
    name: str
    status: str
    """``good``, ``corrupt``, ``missing``, ``unexpected`` or ``unchecked`` (the run was
    interrupted before this part was checked, or it could not be read)."""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """The mirror as a whole: which numbered parts it holds and what their ids add up to."""

    absent_parts: tuple[int, ...]
    """Indices of numbered parts not (or no longer) in the manifest."""
    missing_ids: str
    """Compact ranges of ids missing from 0 … 298,007 (only judged with all 60 parts)."""
    duplicate_ids: tuple[tuple[int, str, str], ...]
    """(id, part, other part) for ids that two parts hold (first ones only)."""
    duplicate_count: int

    @property
    def ok(self) -> bool:
        return not self.missing_ids and not self.duplicate_count

    def render(self) -> list[str]:
        lines = []
        if self.absent_parts:
            lines.append(
                f"coverage: {facts.NUM_PARTS - len(self.absent_parts)} of {facts.NUM_PARTS} parts "
                f"mirrored; absent: parts {compact_ranges(self.absent_parts)} (missing sample "
                "ids are judged once all parts are there)"
            )
        elif self.missing_ids:
            lines.append(
                f"  MISSING sample ids (all {facts.NUM_PARTS} parts are there): {self.missing_ids}"
            )
        else:
            lines.append(
                f"coverage: all {facts.NUM_PARTS} parts, sample ids 0-{facts.NUM_SAMPLES - 1} complete"
            )
        if self.duplicate_count:
            shown = "; ".join(f"{i} in {a} and {b}" for i, a, b in self.duplicate_ids)
            more = self.duplicate_count - len(self.duplicate_ids)
            lines.append(
                f"  DUPLICATE sample ids ({self.duplicate_count}, held by two parts): {shown}"
                + (f"; and {more} more" if more > 0 else "")
            )
        return lines


@dataclass(frozen=True, kw_only=True)
class VerifySettings:
    """What ``david-data verify`` checks and how."""

    dest: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    jobs: int = 4
    """Parts checked at once (threads of this process; ignored on a Dask cluster)."""
    record: bool = True
    """Record corrupt and missing parts in the manifest for the next mirror run."""

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not 1 <= self.jobs <= MAX_JOBS:
            raise ConfigError(f"--jobs must be between 1 and {MAX_JOBS} (got {self.jobs})")


@dataclass(frozen=True, kw_only=True)
class VerifyUnit:
    """One part to check: the work unit (plain data, picklable; DEST an absolute URL)."""

    dest: str
    storage_options: dict[str, Any]
    record: PartRecord
    size: int | None
    """Its size at DEST when planned (None: not there)."""
    quick: bool


@dataclass(frozen=True, kw_only=True)
class VerifyPlan:
    """Plain data: the parts to check, and what the listing already told."""

    settings: VerifySettings
    """With DEST as an absolute URL."""
    units: tuple[VerifyUnit, ...]
    found: tuple[FileVerdict, ...]
    """Verdicts known without reading a part: parts found damaged earlier, files the
    manifest does not list."""
    partial: tuple[str, ...]
    coverage: Coverage


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """What ``verify`` found (implements :class:`david_data.engine.JobReport`)."""

    dest: str
    quick: bool
    files: tuple[FileVerdict, ...]
    partial: tuple[str, ...]
    """Leftovers of an interrupted run (not an error: rerun mirror to finish)."""
    coverage: Coverage | None = None
    recorded: str = ""
    """What was recorded in the manifest for the next mirror run (or why not)."""
    interrupted: bool = False
    """A stop was requested: the parts not checked are ``unchecked``."""

    def by_status(self, status: str) -> tuple[FileVerdict, ...]:
        return tuple(f for f in self.files if f.status == status)

    @property
    def failure_count(self) -> int:
        """Files not good (unchecked ones included), plus one for a coverage problem."""
        bad = sum(f.status != "good" for f in self.files)
        return bad + (0 if self.coverage is None or self.coverage.ok else 1)

    @property
    def ok(self) -> bool:
        return not self.failure_count and not self.interrupted

    def render(self) -> str:
        mode = (
            "quick check (sizes, central directories, member sets)"
            if self.quick
            else ("full check (size, SHA-256, every member's CRC-32, every header)")
        )
        counts = ", ".join(
            f"{len(self.by_status(s))} {s}" for s in ("good", "corrupt", "missing", "unexpected")
        )
        unchecked = self.by_status("unchecked")
        if unchecked:
            counts += f", {len(unchecked)} unchecked"
        lines = [f"verify {self.dest}: {mode}", counts]
        stopped = [v for v in unchecked if v.problems == (STOPPED,)]
        for verdict in self.files:
            if verdict.status == "good" or verdict in stopped:
                continue
            lines.append(f"  {verdict.status.upper()} {verdict.name}")
            lines += first_lines(verdict.problems, 20, "    {}".format, "    ... and {} more")
        if stopped:
            lines.append("  UNCHECKED (interrupted): " + ", ".join(v.name for v in stopped))
        if self.coverage is not None:
            lines.extend(self.coverage.render())
        if self.partial:
            lines.append(
                "unfinished downloads (rerun 'david-data mirror' to complete them): "
                + ", ".join(self.partial)
            )
        if self.recorded:
            lines.append(self.recorded)
        if self.interrupted:
            lines.append("interrupted: rerun the same command to check every part")
        else:
            lines.append("all good" if self.ok else "PROBLEMS FOUND: see above")
        return "\n".join(lines)

    def summary(self) -> str:
        return self.render()

    def markdown(self) -> str:
        rows = markdown_table(
            ("file", "status", "problems"),
            [
                (v.name, v.status, "; ".join(v.problems[:5]).replace("|", "/").replace("\n", " "))
                for v in self.files
            ],
        )
        summary = "\n".join(f"    {line}" for line in self.render().splitlines())
        return f"# Verify of `{self.dest}`\n\n{summary}\n\n" + "\n".join(rows) + "\n"


def _open_mirror(dest: str, storage_options: dict[str, Any] | None) -> tuple[Files, str, Manifest]:
    """The mirror's filesystem, path and manifest; a clear error when DEST is not one."""
    fs, path = open_folder(dest, storage_options)
    url = to_url(fs, path)
    if is_local(fs):
        folder = Path(path)
        if not folder.exists():
            raise ConfigError(
                f"{url} does not exist; give the folder 'david-data mirror' or "
                "'david-data fetch' wrote"
            )
        if not folder.is_dir():
            raise ConfigError(
                f"{url} is a file; give the folder of a mirror (it holds manifest.json) or "
                "of a fetch (fetch-manifest.json)"
            )
    elif fs.isfile(path):
        raise ConfigError(f"{url} is an object, not a folder; give the mirror's folder URL")
    manifest = load_manifest(fs, path)
    if not manifest.exists:
        raise ConfigError(
            f"{url} holds no {MANIFEST_NAME}, so it is not a mirror made by 'david-data mirror' "
            f"(or no part was finished yet), nor a fetch-manifest.json, so it is not a folder "
            f"'david-data fetch' wrote into; run 'david-data mirror {dest}' first"
        )
    if not manifest.parts and not manifest.suspect:
        raise ConfigError(
            f"{url}/{MANIFEST_NAME} records no part; run 'david-data mirror {dest}' to fill it"
        )
    return fs, path, manifest


def _listing(fs: Files, path: str) -> dict[str, dict[str, Any]]:
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except TypeError:  # filesystems without a refresh flag
        entries = fs.ls(path, detail=True)
    return {e["name"].rstrip("/").rsplit("/", 1)[-1]: e for e in entries if e.get("type") == "file"}


def plan_verify(settings: VerifySettings) -> VerifyPlan:
    """Read DEST's manifest and listing: one unit per recorded part, and the verdicts the
    listing gives on its own. Raises :class:`ConfigError` when DEST does not exist, is a
    file or holds no manifest, :class:`~david_data.errors.VerificationError` for a
    manifest that is not one."""
    fs, path, manifest = _open_mirror(settings.dest, settings.storage_options)
    dest = to_url(fs, path)
    settings = replace(settings, dest=dest)
    listing = _listing(fs, path)
    units = tuple(
        VerifyUnit(
            dest=dest,
            storage_options=settings.storage_options,
            record=record,
            size=int(listing[name]["size"]) if name in listing else None,
            quick=settings.quick,
        )
        for name, record in manifest.parts.items()
    )
    found: list[FileVerdict] = []
    for name, suspect in sorted(manifest.suspect.items()):
        if name not in manifest.parts:
            found.append(
                FileVerdict(
                    name=name,
                    status="corrupt",
                    problems=(
                        f"found damaged earlier ({suspect.found_at}): {suspect.problem}",
                        "rerun 'david-data mirror' to fetch it again",
                    ),
                )
            )
    partial = []
    for name in sorted(listing):
        if name in manifest.parts or name in manifest.suspect or name in (MANIFEST_NAME, LOCK_NAME):
            continue
        if name.endswith(_PARTIAL_SUFFIXES):
            partial.append(name)
        elif facts.is_part_name(name):
            found.append(
                FileVerdict(
                    name=name,
                    status="unexpected",
                    problems=(
                        "a part that is not in the manifest: rerun 'david-data mirror' with it selected "
                        "to verify and record it",
                    ),
                )
            )
        else:
            found.append(
                FileVerdict(name=name, status="unexpected", problems=("not a SynthHuman part",))
            )
    return VerifyPlan(
        settings=settings,
        units=units,
        found=tuple(found),
        partial=tuple(partial),
        coverage=coverage(manifest),
    )


def plan_folder_verify(settings: VerifySettings) -> VerifyPlan | FetchVerifyPlan:
    """:func:`plan_verify`, or for a fetch folder
    :func:`~david_data.fetch.verify.plan_fetch_verify` (the verify job's plan)."""
    from ..fetch.verify import is_fetch_folder, plan_fetch_verify

    fs, root = open_folder(settings.dest, settings.storage_options)
    if is_fetch_folder(fs, root):
        return plan_fetch_verify(settings)
    return plan_verify(settings)


def run_folder_verify(
    plan: VerifyPlan | FetchVerifyPlan,
    executor: Executor,
    *,
    progress: Progress = NullProgress(),  # noqa: B008
) -> VerifyReport | FetchVerifyReport:
    """:func:`run_verify`, or :func:`~david_data.fetch.verify.run_fetch_verify` for a
    fetch folder's plan (the verify job's run)."""
    if isinstance(plan, VerifyPlan):
        return run_verify(plan, executor, progress=progress)
    from ..fetch.verify import run_fetch_verify

    return run_fetch_verify(plan, executor, progress=progress)


def verify_unit(unit: VerifyUnit) -> FileVerdict:
    """The work unit: check one part at DEST against its record (module level, so it runs
    anywhere). A stop request leaves it ``unchecked``."""
    fs, path = open_folder(unit.dest, unit.storage_options)
    try:
        return _verify_part(fs, path, unit.record, unit.size, unit.quick)
    except JobInterrupted:
        return _unchecked(unit, STOPPED)


def _unchecked(unit: VerifyUnit, why: str) -> FileVerdict:
    return FileVerdict(name=unit.record.name, status="unchecked", problems=(why,))


def _unit_failed(unit: VerifyUnit, exc: BaseException) -> FileVerdict:
    """A part that could not be read (I/O error, a worker lost twice) is unchecked, named
    with the reason (not recorded as damaged: nothing says its bytes are wrong)."""
    return _unchecked(unit, f"{unit.record.name}: cannot be read ({type(exc).__name__}: {exc})")


def _unseen_dest(dest: str, storage_options: dict[str, Any], manifest: str) -> list[str]:
    """DEST, when this machine cannot see its ``manifest`` (run on every worker)."""
    try:
        fs, path = open_folder(dest, storage_options)
        return [] if fs.exists(join(path, manifest)) else [dest]
    except Exception as exc:  # noqa: BLE001 - reported to the client by name
        return [f"{dest} ({type(exc).__name__}: {exc})"]


def refuse_unseen_dest(
    executor: Executor, dest: str, storage_options: dict[str, Any], manifest: str
) -> None:
    """ConfigError when a worker of an out-of-process executor (a Dask cluster) cannot
    see DEST's ``manifest``: the units would find nothing to check there."""
    if executor.in_process:
        return
    unseen = sorted(
        {
            u
            for found in executor.run_everywhere(_unseen_dest, dest, storage_options, manifest)
            for u in found
        }
    )
    if unseen:
        raise ConfigError(
            f"the workers of {executor.description} cannot see {', '.join(unseen)}; give a "
            "path or URL every worker reaches (a shared folder, az://...)"
        )


def run_verify(
    plan: VerifyPlan,
    executor: Executor,
    *,
    progress: Progress = NullProgress(),  # noqa: B008
) -> VerifyReport:
    """Check the plan's parts on ``executor`` (one unit per part), record what is damaged
    (with ``settings.record``) and report; on a stop request the parts not checked are
    named ``unchecked`` and the report is marked interrupted."""
    settings = plan.settings
    if plan.units:
        refuse_unseen_dest(executor, settings.dest, settings.storage_options, MANIFEST_NAME)
    logger.info("verify %s: %d part(s) on %s", settings.dest, len(plan.units), executor.description)
    bar = progress.task("verify", total=len(plan.units), unit="parts")
    outcome = run_units(
        executor,
        verify_unit,
        plan.units,
        label=lambda u: f"verify {u.record.name}",
        on_error=_unit_failed,
        on_result=lambda unit, verdict: bar.advance(1),
        grace=8.0 if executor.in_process else OUT_OF_PROCESS_GRACE,
    )
    done = {v.name: v for v in outcome.results}
    verdicts = [done.get(u.record.name) or _unchecked(u, STOPPED) for u in plan.units]
    interrupted = outcome.interrupted or any(v.problems == (STOPPED,) for v in verdicts)
    bar.finish("interrupted" if interrupted else "done")
    verdicts += plan.found
    found = {
        v.name: "; ".join(v.problems[:3])
        for v in verdicts
        if v.status in ("corrupt", "missing") and v.name in {u.record.name for u in plan.units}
    }
    fs, path = open_folder(settings.dest, settings.storage_options)
    recorded = _record(fs, path, found) if settings.record and found else ""
    return VerifyReport(
        dest=settings.dest,
        quick=settings.quick,
        files=tuple(verdicts),
        partial=plan.partial,
        coverage=plan.coverage,
        recorded=recorded,
        interrupted=interrupted,
    )


def verify_mirror(
    dest: str,
    storage_options: dict[str, Any] | None = None,
    *,
    quick: bool = False,
    progress: Progress = NullProgress(),  # noqa: B008
    jobs: int = 4,
    record: bool = True,
) -> VerifyReport:
    """Plan and run a verify of ``dest`` on ``jobs`` threads of this process (the Python
    API; see :func:`plan_verify` and :func:`run_verify`)."""
    plan = plan_verify(
        VerifySettings(
            dest=dest,
            storage_options=dict(storage_options or {}),
            quick=quick,
            jobs=jobs,
            record=record,
        )
    )
    with make_executor(EXECUTOR, plan.settings.jobs) as executor:
        return run_verify(plan, executor, progress=progress)


def _record(fs: Files, path: str, found: dict[str, str]) -> str:
    """Move the damaged parts to the manifest's ``suspect`` list, under the mirror lock."""
    folder = Path(path) if is_local(fs) else scratch_dir_for(fs, path)
    names = ", ".join(sorted(found))
    try:
        with hold_lock(folder / LOCK_NAME, to_url(fs, path)):
            record_suspects(fs, path, found)
    except LockedError:
        return f"not recorded (a mirror run is writing {to_url(fs, path)}): {names}"
    except OSError as exc:
        return f"could not record the findings in {MANIFEST_NAME} ({exc}): {names}"
    return f"recorded in {MANIFEST_NAME}: 'david-data mirror' fetches {names} again on its next run"


def coverage(manifest: Manifest) -> Coverage:
    """Which numbered parts the manifest holds, ids missing (all parts there) or doubled."""
    owner: dict[int, str] = {}
    duplicates: list[tuple[int, str, str]] = []
    count = 0
    present = set()
    for name, record in sorted(manifest.parts.items()):
        index = facts.part_index(name)
        if index is None:
            continue  # the sample part repeats ids of part 0 by design
        present.add(index)
        for sample_id in expand_ranges(record.sample_ids):
            other = owner.setdefault(sample_id, name)
            if other != name:
                count += 1
                if len(duplicates) < 10:
                    duplicates.append((sample_id, other, name))
    absent = tuple(i for i in range(facts.NUM_PARTS) if i not in present)
    missing = ""
    if not absent:
        missing = compact_ranges([i for i in range(facts.NUM_SAMPLES) if i not in owner])
    return Coverage(
        absent_parts=absent,
        missing_ids=missing,
        duplicate_ids=tuple(duplicates),
        duplicate_count=count,
    )


def _verify_part(
    fs: Files, dest: str, record: PartRecord, size: int | None, quick: bool
) -> FileVerdict:
    name = record.name
    if size is None:
        return FileVerdict(
            name=name, status="missing", problems=(f"{name} is in the manifest but not at DEST",)
        )
    if size != record.size:
        return FileVerdict(
            name=name,
            status="corrupt",
            problems=(f"{name}: size {size} bytes, the manifest records {record.size}",),
        )
    with fs.open(f"{dest}/{name}", "rb", block_size=8 << 20) as handle:
        check = check_zip(handle, size, quick=quick)
    problems = [
        f"{name}: member {p.member}: {p.problem}" if p.member else f"{name}: {p.problem}"
        for p in check.problems
    ]
    if not quick and check.sha256 != record.sha256:
        problems.append(
            f"{name}: SHA-256 {check.sha256} differs from the manifest's {record.sha256}"
        )
    if check.member_count and check.member_count != record.member_count:
        problems.append(
            f"{name}: {check.member_count} members, the manifest records {record.member_count}"
        )
    if check.sample_ids and compact_ranges(check.sample_ids) != record.sample_ids:
        problems.append(
            f"{name}: holds samples {compact_ranges(check.sample_ids)}, the manifest "
            f"records {record.sample_ids}"
        )
    return FileVerdict(
        name=name, status="corrupt" if problems else "good", problems=tuple(problems)
    )
