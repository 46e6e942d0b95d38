"""``david-data verify DEST`` on a fetch folder: every file the fetch manifest records,
checked again, offline, against the size and CRC-32 it records.

::

    DEST/fetch-manifest.json     the samples, each file's size and CRC-32
    DEST/SynthHuman/<files>      what was fetched

Full mode reads every recorded file in blocks (size and CRC-32, :mod:`.check`); quick
mode checks presence and size. A file in ``DEST/SynthHuman`` that the manifest does not
record is unexpected (an interrupted fetch leaves verified files it has not recorded yet:
a rerun checks and records them); temp files of a killed run are listed apart, not as
problems. Nothing is written: a rerun of the same fetch checks every file itself and
fetches again the ones that fail, which is the fix this report names.

The same job as a mirror's verify (:mod:`david_data.mirror.verify`, which hands a fetch
folder here): :func:`plan_fetch_verify` (settings -> plain plan), then
:func:`run_fetch_verify` (plan, executor -> report), one unit per group of up to
``SAMPLES_PER_UNIT`` recorded samples (:func:`fetch_verify_unit`), on threads of this
process, Prefect tasks or a Dask cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from .. import facts
from ..engine import Executor, run_units, stop_requested
from ..engine.report import first_lines, markdown_table
from ..errors import ConfigError, JobInterrupted
from ..fsutil import Files, join, open_folder, to_url
from ..mirror.manifest import MANIFEST_NAME as MIRROR_MANIFEST
from ..mirror.verify import FileVerdict, VerifySettings, refuse_unseen_dest
from ..progress import NullProgress, Progress
from .check import check_present, list_files
from .manifest import MANIFEST_NAME, load_fetch_manifest
from .run import STALE_TEMP

logger = logging.getLogger(__name__)

STOPPED = "not checked: the run was interrupted"
_STATUS = {"crc32": "corrupt", "size": "corrupt", "missing": "missing", "unreadable": "unchecked"}


def is_fetch_folder(fs: Files, root: str) -> bool:
    """Whether ``root`` holds a fetch manifest (and no mirror's ``manifest.json``)."""
    return fs.isfile(join(root, MANIFEST_NAME)) and not fs.isfile(join(root, MIRROR_MANIFEST))


SAMPLES_PER_UNIT = 64
"""Samples one unit checks (~70 MB of files): a Prefect task or a Dask task per group,
never one per sample, so a fetch of thousands of samples is a few dozen tasks."""


@dataclass(frozen=True, kw_only=True)
class SampleFiles:
    """One recorded sample's files."""

    sample_id: int
    part: str
    files: tuple[tuple[str, int, int], ...]
    """``(name, size, CRC-32)`` as the manifest records them."""
    sizes: tuple[int | None, ...]
    """Each file's size in the listing (None: not there)."""


@dataclass(frozen=True, kw_only=True)
class FetchVerifyUnit:
    """Recorded samples to check (plain data, picklable; ``folder`` an absolute URL)."""

    folder: str
    """``DEST/SynthHuman``."""
    storage_options: dict[str, Any] = field(repr=False)
    samples: tuple[SampleFiles, ...]
    quick: bool

    @property
    def label(self) -> str:
        first, last = self.samples[0].sample_id, self.samples[-1].sample_id
        return f"verify samples {first}-{last}" if last != first else f"verify sample {first}"


@dataclass(frozen=True, kw_only=True)
class FetchVerifyPlan:
    settings: VerifySettings
    """With DEST as an absolute URL."""
    source: str
    """Where the fetch fetched from (the manifest's ``source``)."""
    units: tuple[FetchVerifyUnit, ...]
    found: tuple[FileVerdict, ...]
    """Verdicts the listing gives on its own: files the manifest does not record."""
    partial: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FetchVerifyReport:
    """What ``verify`` found in a fetch folder (a :class:`david_data.engine.JobReport`)."""

    dest: str
    source: str
    quick: bool
    samples: int
    """Samples the manifest records."""
    files: tuple[FileVerdict, ...]
    partial: tuple[str, ...] = ()
    damaged_samples: tuple[tuple[int, str], ...] = ()
    """``(sample id, part)`` of the recorded samples with a file not good (what a rerun
    of the fetch fetches again)."""
    interrupted: bool = False

    def by_status(self, status: str) -> tuple[FileVerdict, ...]:
        return tuple(f for f in self.files if f.status == status)

    @property
    def failure_count(self) -> int:
        return sum(f.status != "good" for f in self.files)

    @property
    def ok(self) -> bool:
        return not self.failure_count and not self.interrupted

    def render(self) -> str:
        mode = "quick check (presence and size)" if self.quick else "full check (size, CRC-32)"
        counts = ", ".join(
            f"{len(self.by_status(s))} {s}" for s in ("good", "corrupt", "missing", "unexpected")
        )
        unchecked = self.by_status("unchecked")
        if unchecked:
            counts += f", {len(unchecked)} unchecked"
        lines = [
            f"verify {self.dest}: fetch folder, {self.samples} sample(s) in {MANIFEST_NAME}; "
            f"{mode} of every file",
            counts,
        ]
        stopped = [v for v in unchecked if v.problems == (STOPPED,)]
        for verdict in self.files:
            if verdict.status == "good" or verdict in stopped:
                continue
            lines.append(f"  {verdict.status.upper()} {facts.EXTRACT_FOLDER}/{verdict.name}")
            lines += first_lines(verdict.problems, 5, "    {}".format, "    ... and {} more")
        if stopped:
            lines.append(f"  UNCHECKED (interrupted): {len(stopped)} file(s)")
        if self.partial:
            lines.append(
                "temp files of a killed fetch (the next fetch removes them): "
                + ", ".join(self.partial)
            )
        if self.interrupted:
            lines.append("interrupted: rerun the same command to check every file")
        elif self.ok:
            lines.append("all good")
        else:
            lines.append("PROBLEMS FOUND: see above")
            lines += self.fix()
        return "\n".join(lines)

    def fix(self) -> list[str]:
        """What to do about the damaged samples: rerun the fetch (and the command that
        fetches just those samples, when it is short)."""
        if not self.damaged_samples:
            return []
        lines = [
            f"rerun the same fetch to re-fetch the {len(self.damaged_samples)} damaged "
            "sample(s): it checks every file it finds and fetches again those that fail"
        ]
        parts = {part for _, part in self.damaged_samples}
        indices = sorted(i for i in map(facts.part_index, parts) if i is not None)
        spec = "sample" if parts == {facts.SAMPLE_PART} else ",".join(map(str, indices))
        if len(self.damaged_samples) <= 50 and (
            parts == {facts.SAMPLE_PART} or len(indices) == len(parts)
        ):
            ids = ",".join(str(sid) for sid, _ in self.damaged_samples)
            lines.append(
                f"  or just those: david-data fetch {self.dest} --base-url {self.source} "
                f"--parts {spec} --ids {ids}"
            )
        return lines

    def summary(self) -> str:
        return self.render()

    def markdown(self) -> str:
        rows = markdown_table(
            ("file", "status", "problems"),
            [
                (v.name, v.status, "; ".join(v.problems[:5]).replace("|", "/"))
                for v in self.files
                if v.status != "good"
            ],
        )
        summary = "\n".join(f"    {line}" for line in self.render().splitlines())
        return f"# Verify of `{self.dest}`\n\n{summary}\n\n" + "\n".join(rows) + "\n"


def plan_fetch_verify(settings: VerifySettings) -> FetchVerifyPlan:
    """Read DEST's fetch manifest and listing: one unit per ``SAMPLES_PER_UNIT`` recorded
    samples, and the verdicts the listing gives on its own."""
    fs, root = open_folder(settings.dest, settings.storage_options)
    dest = to_url(fs, root)
    manifest = load_fetch_manifest(fs, root)
    if not manifest.samples:
        raise ConfigError(
            f"{dest}/{MANIFEST_NAME} records no sample (no fetch has finished one); rerun "
            "the fetch that made it"
        )
    folder = join(root, facts.EXTRACT_FOLDER)
    listing = list_files(fs, folder)
    samples = [
        SampleFiles(
            sample_id=sid,
            part=record.part,
            files=tuple((n, s, c) for n, (s, c) in sorted(record.files.items())),
            sizes=tuple(listing.get(n) for n in sorted(record.files)),
        )
        for sid, record in sorted(manifest.samples.items())
    ]
    units = tuple(
        FetchVerifyUnit(
            folder=to_url(fs, folder),
            storage_options=settings.storage_options,
            samples=tuple(samples[at : at + SAMPLES_PER_UNIT]),
            quick=settings.quick,
        )
        for at in range(0, len(samples), SAMPLES_PER_UNIT)
    )
    recorded = {n for record in manifest.samples.values() for n in record.files}
    found, partial = [], []
    for name in sorted(set(listing) - recorded):
        if STALE_TEMP.match(name):
            partial.append(name)
        elif facts.parse_member_name(name) is None:
            found.append(
                FileVerdict(
                    name=name,
                    status="unexpected",
                    problems=(
                        "not a SynthHuman sample file: move it out of "
                        f"{facts.EXTRACT_FOLDER}/, which holds what the fetch wrote",
                    ),
                )
            )
        else:
            found.append(
                FileVerdict(
                    name=name,
                    status="unexpected",
                    problems=(
                        f"not in {MANIFEST_NAME} (a fetch that was stopped leaves files it has "
                        "not recorded): rerun the same fetch to check and record it",
                    ),
                )
            )
    return FetchVerifyPlan(
        settings=replace(settings, dest=dest),
        source=manifest.source,
        units=units,
        found=tuple(found),
        partial=tuple(partial),
    )


Verdicts = tuple[tuple[FileVerdict, ...], ...]
"""A unit's verdicts: one tuple per sample, one verdict per file, in the unit's order."""


def fetch_verify_unit(unit: FetchVerifyUnit) -> Verdicts:
    """The work unit: check its samples' files (module level, so it runs anywhere)."""
    fs, folder = open_folder(unit.folder, unit.storage_options)
    if stop_requested():
        raise JobInterrupted("stopped on request")
    files = [file for sample in unit.samples for file in sample.files]
    sizes = [size for sample in unit.samples for size in sample.sizes]
    expected = {name: (size, crc) for name, size, crc in files}
    on_disk = {
        name: size for (name, _, _), size in zip(files, sizes, strict=True) if size is not None
    }
    # the manifest is both what each file should be and what it records (nothing stale)
    _, found = check_present(fs, folder, expected, on_disk, expected, jobs=1, read=not unit.quick)
    problems = {problem.name: problem for problem in found}
    return tuple(
        tuple(
            FileVerdict(name=name, status="good")
            if name not in problems
            else FileVerdict(
                name=name, status=_STATUS[problems[name].kind], problems=(problems[name].detail,)
            )
            for name, _, _ in sample.files
        )
        for sample in unit.samples
    )


def _stopped(unit: FetchVerifyUnit, why: str = STOPPED) -> Verdicts:
    return tuple(
        tuple(FileVerdict(name=n, status="unchecked", problems=(why,)) for n, _, _ in s.files)
        for s in unit.samples
    )


def _unit_failed(unit: FetchVerifyUnit, exc: BaseException) -> Verdicts:
    if isinstance(exc, JobInterrupted):
        return _stopped(unit)
    return _stopped(unit, f"cannot be checked ({type(exc).__name__}: {exc})")


def run_fetch_verify(
    plan: FetchVerifyPlan,
    executor: Executor,
    *,
    progress: Progress = NullProgress(),  # noqa: B008
) -> FetchVerifyReport:
    """Check the plan's samples on ``executor`` (a unit per group of samples) and report; on a
    stop request the files not checked are ``unchecked`` and the report is interrupted."""
    settings = plan.settings
    if plan.units:
        refuse_unseen_dest(executor, settings.dest, settings.storage_options, MANIFEST_NAME)
    samples = sum(len(u.samples) for u in plan.units)
    logger.info(
        "verify %s: %d sample(s) in %d unit(s) on %s",
        settings.dest,
        samples,
        len(plan.units),
        executor.description,
    )
    bar = progress.task("verify", total=samples, unit="samples")
    done: dict[int, Verdicts] = {}

    def on_result(unit: FetchVerifyUnit, verdicts: Verdicts) -> None:
        done[id(unit)] = verdicts
        bar.advance(len(unit.samples))

    outcome = run_units(
        executor,
        fetch_verify_unit,
        plan.units,
        label=lambda u: u.label,
        on_error=_unit_failed,
        on_result=on_result,
    )
    verdicts: list[FileVerdict] = []
    damaged = []
    for unit in plan.units:
        for sample, found in zip(unit.samples, done.get(id(unit)) or _stopped(unit), strict=True):
            verdicts += found
            if any(v.status != "good" and v.problems != (STOPPED,) for v in found):
                damaged.append((sample.sample_id, sample.part))
    interrupted = outcome.interrupted or any(v.problems == (STOPPED,) for v in verdicts)
    bar.finish("interrupted" if interrupted else "done")
    return FetchVerifyReport(
        dest=settings.dest,
        source=plan.source,
        quick=settings.quick,
        samples=samples,
        files=tuple(verdicts) + plan.found,
        partial=plan.partial,
        damaged_samples=tuple(damaged),
        interrupted=interrupted,
    )


__all__ = [
    "FetchVerifyPlan",
    "FetchVerifyReport",
    "FetchVerifyUnit",
    "SampleFiles",
    "fetch_verify_unit",
    "is_fetch_folder",
    "plan_fetch_verify",
    "run_fetch_verify",
]
