"""Prefect flow for ``david-data mirror``: one task per part, parts in parallel.

All logic lives in :mod:`david_data.mirror`; this adds the task runner, task names,
progress bars, and a markdown artifact summarising the run. Part failures are
outcomes, not exceptions: the other parts carry on and the report names each failure.
"""

from __future__ import annotations

import contextlib
import sys
import time

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from david_data.fsutil import resolve, to_url
from david_data.mirror import MirrorReport, MirrorSettings, PartOutcome, PartPlan, mirror_part
from david_data.mirror.plan import check_space, plan_mirror
from david_data.mirror.run import mirror_lock, part_progress
from david_data.progress import LogProgress, Progress, RichProgress


@task(cache_policy=NO_CACHE, task_run_name="mirror {part.name}")
def mirror_part_task(
    part: PartPlan, settings: MirrorSettings, progress: Progress, overall: object
) -> PartOutcome:
    on_bytes, handle = part_progress(progress, overall, part)  # type: ignore[arg-type]
    outcome = mirror_part(part, settings, on_bytes=on_bytes)
    handle.finish(outcome.status)
    return outcome


@flow(name="mirror", validate_parameters=False, log_prints=True)
def mirror_flow(settings: MirrorSettings, progress: bool = True) -> MirrorReport:
    """Mirror the selected parts to ``settings.dest`` and return a report."""
    start = time.monotonic()
    use_rich = progress and sys.stderr.isatty()
    bars: Progress = RichProgress() if use_rich else LogProgress()
    with mirror_lock(settings), bars if use_rich else contextlib.nullcontext():  # type: ignore[attr-defined]
        plan = plan_mirror(settings)
        check_space(plan)
        overall = bars.task("all parts", total=plan.total_bytes, unit="bytes")
        futures = [mirror_part_task.submit(part, settings, bars, overall) for part in plan.parts]
        outcomes = tuple(f.result() for f in futures)
        overall.finish(
            "done" if all(o.status != "failed" for o in outcomes) else "some parts failed"
        )
    fs, dest = resolve(settings.dest, settings.storage_options)
    report = MirrorReport(
        dest=to_url(fs, dest), outcomes=outcomes, seconds=time.monotonic() - start
    )
    create_markdown_artifact(
        markdown=report.markdown(), key="mirror-report", description=f"mirror of {report.dest}"
    )
    return report


def run_mirror_flow(settings: MirrorSettings, progress: bool = True) -> MirrorReport:
    """Run :func:`mirror_flow` with ``settings.jobs`` parts at once."""
    runner = ThreadPoolTaskRunner(max_workers=settings.jobs)
    return mirror_flow.with_options(task_runner=runner)(settings=settings, progress=progress)
