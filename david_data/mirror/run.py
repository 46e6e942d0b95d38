"""Run a whole mirror in-process (threads): plan, lock, parts in parallel, report.

The Prefect flow (``flows/mirror.py``) does the same with one task per part; both
use :func:`mirror_lock`, :func:`part_progress` and :class:`MirrorReport` from here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import is_local, resolve, to_url
from ..progress import NullProgress, Progress, TaskHandle
from .lock import LOCK_NAME, hold_lock
from .part import PartOutcome, mirror_part
from .plan import MirrorPlan, MirrorSettings, PartPlan, check_space, human_bytes, plan_mirror
from .promote import scratch_dir_for


@dataclass(frozen=True, kw_only=True)
class MirrorReport:
    """Outcome of a mirror run (what the CLI prints and the flow's artifact shows)."""

    dest: str
    outcomes: tuple[PartOutcome, ...]
    seconds: float

    @property
    def failed(self) -> tuple[PartOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def bytes_fetched(self) -> int:
        return sum(o.bytes_fetched for o in self.outcomes)

    @property
    def retries(self) -> int:
        return sum(o.retries for o in self.outcomes)

    def summary(self) -> str:
        counts = {s: sum(o.status == s for o in self.outcomes) for s in ("ok", "skipped", "failed")}
        rate = self.bytes_fetched / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"mirror of {self.dest}: {counts['ok']} fetched and verified, {counts['skipped']} "
            f"already there, {counts['failed']} failed; {human_bytes(self.bytes_fetched)} "
            f"downloaded in {self.seconds:.1f}s ({human_bytes(rate)}/s), {self.retries} retries",
        ]
        for outcome in self.failed:
            lines.append(f"  FAILED {outcome.name}: {outcome.error}")
        if self.failed:
            lines.append("rerun the same command to retry the failed parts (done parts are kept)")
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = [
            "| part | status | size | fetched | resumed | retries | restarts | seconds | note |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for o in self.outcomes:
            note = (o.error or ("extracted" if o.extracted else "")).replace("|", "\\|")
            rows.append(
                f"| {o.name} | {o.status} | {human_bytes(o.size)} | {human_bytes(o.bytes_fetched)} | "
                f"{human_bytes(o.bytes_resumed)} | {o.retries} | {o.restarts} | {o.seconds:.1f} | {note} |"
            )
        head = (
            f"# Mirror of `{self.dest}`\n\n{len(self.outcomes)} parts, {len(self.failed)} failed, "
            f"{human_bytes(self.bytes_fetched)} downloaded in {self.seconds:.1f}s, "
            f"{self.retries} retries.\n\n"
        )
        return head + "\n".join(rows) + "\n"


@contextlib.contextmanager
def mirror_lock(settings: MirrorSettings) -> Iterator[None]:
    """Hold the destination's lock (see :mod:`.lock`) for the whole run."""
    fs, dest = resolve(settings.dest, settings.storage_options)
    folder = Path(dest) if is_local(fs) else scratch_dir_for(fs, dest, settings.scratch_dir)
    with hold_lock(folder / LOCK_NAME, to_url(fs, dest)):
        yield


def part_progress(
    progress: Progress, overall: TaskHandle, part: PartPlan
) -> tuple[Callable[[int], None], TaskHandle]:
    """A per-part bar plus a callback that advances it and the overall bar."""
    handle = progress.task(f"{part.name} ({part.action})", total=part.size, unit="bytes")

    def on_bytes(n: int) -> None:
        handle.advance(n)
        overall.advance(n)

    return on_bytes, handle


def run_parts(
    plan: MirrorPlan,
    progress: Progress,
    run: Callable[[PartPlan, Callable[[int], None]], PartOutcome],
) -> tuple[PartOutcome, ...]:
    """Run ``run`` over the plan's parts with ``jobs`` threads, with progress bars."""
    overall = progress.task("all parts", total=plan.total_bytes, unit="bytes")

    def one(part: PartPlan) -> PartOutcome:
        on_bytes, handle = part_progress(progress, overall, part)
        outcome = run(part, on_bytes)
        handle.finish(outcome.status if not outcome.error else f"failed: {outcome.error[:80]}")
        return outcome

    with ThreadPoolExecutor(max_workers=plan.settings.jobs) as pool:
        outcomes = tuple(pool.map(one, plan.parts))
    overall.finish("done" if all(o.status != "failed" for o in outcomes) else "some parts failed")
    return outcomes


def run_mirror(settings: MirrorSettings, progress: Progress = NullProgress()) -> MirrorReport:  # noqa: B008
    """Plan and run a whole mirror without Prefect (used by tests and scripts)."""
    start = time.monotonic()
    with mirror_lock(settings):
        plan = plan_mirror(settings)
        check_space(plan)
        outcomes = run_parts(
            plan, progress, lambda part, on_bytes: mirror_part(part, settings, on_bytes=on_bytes)
        )
    fs, dest = resolve(settings.dest, settings.storage_options)
    return MirrorReport(dest=to_url(fs, dest), outcomes=outcomes, seconds=time.monotonic() - start)
