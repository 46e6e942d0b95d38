"""Run a fetch plan: coalesced ranged requests in parallel, every member verified, files
written atomically, the manifest kept up to date.

The unit of work (:func:`fetch_unit`) fetches its ranges one after the other on one
connection; each range's bytes are routed, as they stream, to the members inside it
(:class:`~david_data.catalog.member.MemberStream` checks header, size and CRC-32), and a member is written
to ``DEST/SynthHuman/<name>`` the moment it verifies. A member that fails verification is
fetched once more on its own; if it fails again, :func:`run_fetch` reads its part's
central directory again (the listing may be what was wrong): when the new reading lists
the member otherwise, it is fetched by that reading, else it is reported by name. A part
that changed on the server (412, new ETag or size) ends the unit early; :func:`run_fetch`
then reads that part's central directory again, keeps the files whose CRC-32 the new
version still lists, and fetches the rest in another round.

A file the plan found damaged at DEST (:attr:`~.plan.FetchPlan.damaged`: it failed its
CRC-32 or size check, or the manifest records it and DEST lacks it) is removed before
anything is fetched, so that a failed second fetch leaves it missing, never wrong, and
its sample leaves the manifest until it is complete again; the report names those
fetched again (:attr:`FetchReport.repaired`).

A sample is complete only when all five of its files are on disk and verified: a
sample its part lists without some of them is reported with the files it lacks, and an
entry of a part that is not a sample file is reported too (exit 1 either way). DEST is
checked for writing once, before anything is fetched. A server that ignores ranges
stops the run with :class:`~david_data.errors.RangeNotSupportedError`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass

from .. import facts
from ..catalog.catalog import load_part, replace_part
from ..catalog.directory import PartCatalog
from ..catalog.member import MemberTask
from ..catalog.reader import read_members
from ..engine import Executor, run_units
from ..errors import ConfigError, DavidDataError, RangeNotSupportedError
from ..fsutil import Files, atomic_write_bytes, join, open_folder, probe_write
from ..progress import NullProgress, Progress
from .check import FileProblem
from .manifest import SampleRecord, load_fetch_manifest, save_fetch_manifest
from .plan import FetchPlan, FetchUnit, SampleWork, make_units, part_work
from .report import FetchReport

logger = logging.getLogger(__name__)

_SAVE_EVERY = 10.0
"""Seconds between manifest saves during a run (a killed run loses at most that much
bookkeeping, never data: the next plan finds the files and checks them)."""


@dataclass(frozen=True, kw_only=True)
class Written:
    sample_id: int
    file_name: str
    size: int
    crc32: int


@dataclass(frozen=True, kw_only=True)
class UnitResult:
    """What one unit did."""

    part: str
    version: str | None
    written: tuple[Written, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    """``(file name, reason)`` of members that failed twice or could not be read."""
    changed: bool = False
    """The part changed on the server; members not written are left for the next round."""
    bytes_received: int = 0


def fetch_unit(unit: FetchUnit) -> UnitResult:
    """Fetch a unit's ranges, verify and write their members (see the module docstring)."""
    fs, folder = open_folder(unit.dest, unit.storage_options)
    written: list[Written] = []

    def write(task: MemberTask, data: bytes) -> None:
        atomic_write_bytes(fs, join(folder, task.file_name), data)
        written.append(
            Written(
                sample_id=task.sample_id, file_name=task.file_name, size=task.size, crc32=task.crc32
            )
        )

    outcome = read_members(
        unit.url,
        unit.version,
        unit.ranges,
        on_member=write,
        policy=unit.policy,
        storage_options=unit.storage_options,
    )
    if outcome.changed:
        logger.warning("%s changed on the server; its catalog is read again", unit.url)
    return UnitResult(
        part=unit.part,
        version=unit.version.version,
        written=tuple(written),
        failed=tuple((task.file_name, reason) for task, reason in outcome.failed),
        changed=outcome.changed,
        bytes_received=outcome.received,
    )


def _unit_failed(unit: FetchUnit, exc: BaseException) -> UnitResult:
    reason = exc.message if isinstance(exc, DavidDataError) else f"{type(exc).__name__}: {exc}"
    names = [m.file_name for r in unit.ranges for m in r.members]
    return UnitResult(
        part=unit.part, version=unit.version.version, failed=tuple((n, reason) for n in names)
    )


class _Fold:
    """The client's bookkeeping: what each sample still misses, the manifest, failures."""

    def __init__(self, plan: FetchPlan, progress: Progress) -> None:
        self.plan = plan
        self.catalog = plan.catalog
        fs, self.root = open_folder(plan.dest_url, plan.settings.storage_options)
        self.fs = fs
        self.manifest = load_fetch_manifest(fs, self.root, plan.source.base)
        self.samples: dict[int, SampleWork] = {s.sample_id: s for s in plan.samples}
        self.missing = {s.sample_id: set(s.missing) | s.absent for s in plan.samples}
        self.by_file = {m.file_name: s.sample_id for s in plan.samples for m in s.members}
        self.known: dict[str, tuple[int, int]] = {
            m.file_name: (m.size, m.crc32)
            for s in plan.samples
            for m in s.members
            if m.file_name not in s.missing
        }
        self.failures: dict[str, str] = {}
        self.damaged = {p.name: p for p in plan.damaged}
        self.repaired: dict[str, FileProblem] = {}
        for part, name in plan.stray_entries:  # no sample's file: reported, not a failure
            logger.warning(
                "%s: entry %r is not a SynthHuman sample file; it is left out", part, name
            )
        self.changed: set[str] = set()
        self.failed_parts: set[str] = set()
        self.fatal: BaseException | None = None
        self.received = 0
        self.completed_now = 0
        self.bar = progress.task("fetch", total=sum(u.nbytes for u in plan.units), unit="bytes")
        self.saved_at = time.monotonic()
        self.dirty = False
        _remove_stale_temps(fs, join(self.root, facts.EXTRACT_FOLDER))
        for problem in plan.damaged:
            if problem.kind != "missing":
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(join(self.root, facts.EXTRACT_FOLDER, problem.name))
        for sid, missing in self.missing.items():
            if not missing:
                self._record(sid)
            elif self.manifest.samples.pop(sid, None) is not None:
                self.dirty = True  # recorded, but not complete now: out until it is again
        if plan.damaged:
            self.save()  # before any unit: the manifest never lists a removed file

    def _record(self, sid: int) -> None:
        sample = self.samples[sid]
        version = self.catalog.part(sample.part).version.version
        files = {m.file_name: (m.size, m.crc32) for m in sample.members}
        old = self.manifest.samples.get(sid)
        if old is None or (old.part, old.version, old.files) != (sample.part, version, files):
            self.manifest.samples[sid] = SampleRecord(
                part=sample.part, version=version, files=files
            )
            self.dirty = True

    def add(self, unit: FetchUnit, result: UnitResult) -> None:
        self.received += result.bytes_received
        self.bar.advance(result.bytes_received)
        for w in result.written:
            self.known[w.file_name] = (w.size, w.crc32)
            self.failures.pop(w.file_name, None)
            if w.file_name in self.damaged:
                self.repaired[w.file_name] = self.damaged[w.file_name]
            missing = self.missing.get(w.sample_id)
            if missing is None or w.file_name not in missing:
                continue
            missing.discard(w.file_name)
            if not missing:
                self.completed_now += 1
                self._record(w.sample_id)
        for name, reason in result.failed:
            self.failures[name] = reason
        if result.failed:
            self.failed_parts.add(unit.part)
        if result.changed:
            self.changed.add(unit.part)
        if time.monotonic() - self.saved_at > _SAVE_EVERY:
            self.save()

    def error(self, unit: FetchUnit, exc: BaseException) -> UnitResult:
        if isinstance(exc, RangeNotSupportedError):
            self.fatal = exc
            return UnitResult(part=unit.part, version=unit.version.version)
        return _unit_failed(unit, exc)

    def save(self) -> None:
        if self.dirty:
            save_fetch_manifest(self.fs, self.root, self.manifest)
            self.dirty = False
        self.saved_at = time.monotonic()

    def replan(self, parts: set[str]) -> tuple[FetchUnit, ...]:
        """Read the changed parts again and plan what their samples now miss."""
        settings, source = self.plan.settings, self.plan.source
        again: list[SampleWork] = []
        for name in sorted(parts):
            fresh = load_part(
                source, name, policy=settings.policy, use_cache=False, table=self.plan.tables
            )
            self.catalog = replace_part(self.catalog, fresh)
            ids = [sid for sid, s in self.samples.items() if s.part == name]
            again += self._take(fresh, ids)
        return make_units(settings, source, self.catalog, again, self.plan.files_dir)

    def _take(self, fresh: PartCatalog, ids: list[int]) -> list[SampleWork]:
        """Plan the samples ``ids`` of ``fresh`` again; returns those with files to fetch."""
        again = []
        for work in part_work(fresh, ids, self.known):
            self.samples[work.sample_id] = work
            self.missing[work.sample_id] = set(work.missing) | work.absent
            if not work.members:
                self.failures[f"sample {work.sample_id}"] = f"no longer in {fresh.name}"
            elif not self.missing[work.sample_id]:
                self._record(work.sample_id)
            elif work.missing:
                again.append(work)
        return again

    def recheck(self, parts: set[str]) -> tuple[FetchUnit, ...]:
        """Read again the directories of parts whose members failed twice; fetch those
        members again by the new reading where it lists them otherwise."""
        settings, source = self.plan.settings, self.plan.source
        again: list[SampleWork] = []
        for name in sorted(parts):
            old = self.catalog.part(name)
            try:
                fresh = load_part(
                    source, name, policy=settings.policy, use_cache=False, table=self.plan.tables
                )
            except DavidDataError as exc:
                logger.warning("cannot read the directory of %s again: %s", name, exc)
                continue
            if fresh.same_members(old) and fresh.version == old.version:
                continue  # the listing was right: the members themselves are damaged
            logger.warning(
                "%s: the central directory read again differs from the one used; "
                "fetching its failed members by the new reading",
                name,
            )
            self.catalog = replace_part(self.catalog, fresh)
            ids = [
                sid
                for sid, s in self.samples.items()
                if s.part == name and any(f in self.failures for f in self.missing[sid])
            ]
            again += self._take(fresh, ids)
        return make_units(settings, source, self.catalog, again, self.plan.files_dir)


STALE_TEMP = re.compile(r"^[a-z]+_\d{7}\.(png|exr|txt)\.[0-9a-f]{8}\.tmp$")
"""A temp file a killed run left (:func:`david_data.fsutil.atomic_write_bytes` names them so)."""


def _remove_stale_temps(fs: Files, folder: str) -> None:
    try:
        names = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return
    for path in names:
        if STALE_TEMP.match(path.rstrip("/").rsplit("/", 1)[-1]):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)


def check_dest_writable(plan: FetchPlan) -> None:
    """ConfigError unless a file can be written in ``DEST/SynthHuman`` (a probe file,
    removed at once: permissions alone do not tell, e.g. for root or a read-only mount)."""
    fs, folder = open_folder(plan.files_dir, plan.settings.storage_options)
    try:
        fs.makedirs(folder, exist_ok=True)
        probe_write(fs, folder)
    except OSError as exc:
        raise ConfigError(
            f"cannot write to DEST {plan.dest_url} ({exc.strerror or exc}); fix its "
            "permissions or choose another DEST"
        ) from exc


def run_fetch(
    plan: FetchPlan,
    executor: Executor,
    *,
    progress: Progress = NullProgress(),  # noqa: B008
) -> FetchReport:
    """Run the plan's units on ``executor`` and return the report (see module docstring)."""
    start = time.monotonic()
    check_dest_writable(plan)
    fold = _Fold(plan, progress)
    units = plan.units
    reread: list[str] = []
    rechecked: set[str] = set()
    interrupted = False
    rounds = 0
    while units:
        outcome = run_units(
            executor,
            fetch_unit,
            units,
            label=lambda u: u.label,
            on_error=fold.error,
            on_result=fold.add,
        )
        interrupted = outcome.interrupted
        changed, fold.changed = fold.changed, set()
        suspect = fold.failed_parts - rechecked - changed
        fold.failed_parts = set()
        if interrupted or fold.fatal is not None or not (changed or suspect):
            break
        units = ()
        if changed:
            rounds += 1
            if rounds > plan.settings.policy.max_restarts:
                for name in sorted(changed):
                    fold.failures[name] = (
                        f"changed on the server {rounds} times during the run; rerun later"
                    )
                break
            reread += sorted(changed)
            units = fold.replan(changed)
        if suspect:
            rechecked |= suspect
            units += fold.recheck(suspect)
    fold.save()
    fold.bar.finish("interrupted" if interrupted else "done")
    if fold.fatal is not None:
        raise fold.fatal
    complete = sum(1 for m in fold.missing.values() if not m)
    for sid, missing in fold.missing.items():
        sample = fold.samples[sid]
        for name in sorted(missing & sample.absent):
            fold.failures[name] = (
                f"sample {sid} is incomplete: {sample.part} does not list this member"
            )
        if missing and not interrupted:
            for name in sorted(missing):
                fold.failures.setdefault(name, f"not fetched (sample {sid})")
    for name, problem in fold.damaged.items():
        if name in fold.failures and problem.kind != "missing":
            fold.failures[name] += f"; the copy at DEST ({problem.detail}) was removed"
    return FetchReport(
        dest=plan.dest_url,
        source=plan.source.base,
        samples=len(plan.samples),
        complete=complete,
        fetched_samples=fold.completed_now,
        bytes_fetched=fold.received,
        failures=tuple(sorted(fold.failures.items())),
        reread=tuple(reread),
        rechecked=tuple(sorted(rechecked)),
        repaired=tuple(fold.repaired[n] for n in sorted(fold.repaired)),
        interrupted=interrupted,
        seconds=time.monotonic() - start,
    )
