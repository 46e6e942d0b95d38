"""Run a mirror plan: the destination lock, one work unit per part through an
executor (:func:`david_data.engine.run_units`), and the report.

``run_mirror(plan, executor)`` is the one engine behind the CLI (threads of this
process), the Prefect flow (one task per part) and :func:`mirror` (the Python API).
A part's failure is an outcome, not an exception: the other parts carry on and the
report names each failure. On a stop request the parts running checkpoint and report
``interrupted``; those not started are listed as such.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from .._sizes import human_bytes
from ..engine import Executor, make_executor, run_units
from ..errors import DavidDataError
from ..fsutil import is_local, open_folder
from ..progress import NullProgress, Progress, TaskHandle
from .lock import LOCK_NAME, hold_lock
from .part import PartOutcome, mirror_part
from .plan import MirrorPlan, MirrorSettings, PartPlan, check_space, plan_mirror
from .promote import scratch_dir_for

EXECUTOR: Literal["threads", "processes"] = "threads"
"""Where this machine runs the units (I/O-bound: each part is a download, one thread
each); :mod:`david_data.jobs` reads it."""


@dataclass(frozen=True, kw_only=True)
class MirrorUnit:
    """One part to bring to DEST: the mirror's work unit (plain data, picklable)."""

    part: PartPlan
    settings: MirrorSettings


@dataclass(frozen=True, kw_only=True)
class MirrorReport:
    """Outcome of a mirror run (what the CLI prints and the flow's artifact shows)."""

    dest: str
    outcomes: tuple[PartOutcome, ...]
    seconds: float
    stopped: bool = False
    """A stop was requested during the run."""

    @property
    def failed(self) -> tuple[PartOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def unfinished(self) -> tuple[PartOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "interrupted")

    @property
    def interrupted(self) -> bool:
        return self.stopped or bool(self.unfinished)

    @property
    def failure_count(self) -> int:
        return len(self.failed)

    @property
    def bytes_fetched(self) -> int:
        return sum(o.bytes_fetched for o in self.outcomes)

    @property
    def retries(self) -> int:
        return sum(o.retries for o in self.outcomes)

    def summary(self) -> str:
        counts = {
            s: sum(o.status == s for o in self.outcomes)
            for s in ("ok", "intact", "skipped", "failed", "interrupted")
        }
        fetched = self.bytes_fetched
        speed = (
            f" ({human_bytes(fetched / self.seconds)}/s)" if fetched and self.seconds > 0 else ""
        )
        intact = f"{counts['intact']} re-checked intact, " if counts["intact"] else ""
        line = (
            f"mirror of {self.dest}: {counts['ok']} fetched and verified, {intact}"
            f"{counts['skipped']} already there, {counts['failed']} failed"
        )
        if counts["interrupted"]:
            line += f", {counts['interrupted']} unfinished"
        lines = [
            f"{line}; {human_bytes(fetched)} downloaded in {self.seconds:.1f}s{speed}, "
            f"{self.retries} retries"
        ]
        for outcome in self.failed:
            lines.append(f"  FAILED {outcome.name}: {outcome.error}")
        if self.unfinished:
            names = ", ".join(o.name for o in self.unfinished)
            lines.append(f"  interrupted before finishing: {names} (their progress is kept)")
        if self.failed:
            lines.append("rerun the same command to retry the failed parts (done parts are kept)")
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = [
            "| part | status | size | fetched | resumed | retries | restarts | repairs | seconds | note |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for o in self.outcomes:
            note = o.error or o.note or ("extracted" if o.extracted else "")
            note = note.replace("|", "\\|")
            rows.append(
                f"| {o.name} | {o.status} | {human_bytes(o.size)} | {human_bytes(o.bytes_fetched)} | "
                f"{human_bytes(o.bytes_resumed)} | {o.retries} | {o.restarts} | {o.repairs} | "
                f"{o.seconds:.1f} | {note} |"
            )
        state = " Interrupted: rerun to resume." if self.interrupted else ""
        head = (
            f"# Mirror of `{self.dest}`\n\n{len(self.outcomes)} parts, {len(self.failed)} failed, "
            f"{human_bytes(self.bytes_fetched)} downloaded in {self.seconds:.1f}s, "
            f"{self.retries} retries.{state}\n\n"
        )
        return head + "\n".join(rows) + "\n"


@contextlib.contextmanager
def mirror_lock(settings: MirrorSettings) -> Iterator[None]:
    """Hold the destination's lock (see :mod:`.lock`) for the whole run."""
    fs, dest = open_folder(settings.dest, settings.storage_options)
    folder = Path(dest) if is_local(fs) else scratch_dir_for(fs, dest, settings.scratch_dir)
    with hold_lock(folder / LOCK_NAME, settings.dest):
        yield


def mirror_unit(unit: MirrorUnit) -> PartOutcome:
    """The work unit: bring one part to DEST (module level, so it runs anywhere)."""
    return mirror_part(unit.part, unit.settings)


def _unit_with_progress(progress: Progress, overall: TaskHandle, unit: MirrorUnit) -> PartOutcome:
    """The work unit with live byte counts (only where units share this process)."""
    part = unit.part
    handle = progress.task(f"{part.name} ({part.action})", total=part.to_fetch, unit="bytes")

    def on_bytes(n: int) -> None:
        handle.advance(n)
        overall.advance(n)

    outcome = mirror_part(part, unit.settings, on_bytes=on_bytes)
    handle.finish(outcome.status if not outcome.error else f"failed: {outcome.error[:80]}")
    return outcome


def _failed(unit: MirrorUnit, exc: BaseException) -> PartOutcome:
    message = exc.message if isinstance(exc, DavidDataError) else f"{type(exc).__name__}: {exc}"
    return PartOutcome(
        name=unit.part.name, status="failed", size=unit.part.size or 0, error=message
    )


def run_mirror(
    plan: MirrorPlan,
    executor: Executor,
    *,
    progress: Progress = NullProgress(),  # noqa: B008
) -> MirrorReport:
    """Run ``plan`` on ``executor`` (one unit per part) under the destination lock."""
    start = time.monotonic()
    settings = plan.settings
    check_space(plan)
    units = [MirrorUnit(part=part, settings=settings) for part in plan.parts]
    with mirror_lock(settings):
        overall = progress.task("all parts", total=plan.bytes_to_fetch, unit="bytes")
        fn: Callable[[MirrorUnit], PartOutcome] = (
            partial(_unit_with_progress, progress, overall) if executor.in_process else mirror_unit
        )

        def count(unit: MirrorUnit, outcome: PartOutcome) -> None:
            if not executor.in_process:
                overall.advance(outcome.bytes_fetched)

        ran = run_units(
            executor,
            fn,
            units,
            label=lambda u: f"mirror {u.part.name}",
            on_error=_failed,
            on_result=count,
        )
        done = {o.name: o for o in ran.results}
        outcomes = tuple(
            done.get(p.name)
            or PartOutcome(name=p.name, status="interrupted", size=p.size or 0, note="not started")
            for p in plan.parts
        )
        failed = any(o.status == "failed" for o in outcomes)
        overall.finish(
            "interrupted" if ran.interrupted else ("some parts failed" if failed else "done")
        )
    return MirrorReport(
        dest=settings.dest,
        outcomes=outcomes,
        seconds=time.monotonic() - start,
        stopped=ran.interrupted,
    )


def mirror(
    settings: MirrorSettings,
    *,
    progress: Progress = NullProgress(),  # noqa: B008
) -> MirrorReport:
    """Plan and run a whole mirror on ``settings.jobs`` threads of this process (the
    Python API; the CLI does the same with progress bars and signal handling)."""
    plan = plan_mirror(settings)
    with make_executor(EXECUTOR, plan.settings.jobs) as executor:
        return run_mirror(plan, executor, progress=progress)
