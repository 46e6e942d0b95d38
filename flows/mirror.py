"""Prefect flow for ``david-data mirror``: one task per part, parts in parallel.

All logic lives in :mod:`david_data.mirror`; this adds the task runner, task names,
progress bars, and a markdown artifact summarising the run. Part failures are
outcomes, not exceptions: the other parts carry on and the report names each failure.
"""

from __future__ import annotations

import time

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types import SecretDict

import flows  # noqa: F401  (deployments load this file by path; the package sets the log level)
from david_data.facts import parse_parts
from david_data.fsutil import resolve, to_url
from david_data.mirror import MirrorReport, MirrorSettings, PartOutcome, PartPlan, mirror_part
from david_data.mirror.plan import check_space, plan_mirror
from david_data.mirror.run import mirror_lock, part_progress
from david_data.progress import Progress, progress_for
from david_data.settings import data_base_url

MAX_JOBS = 16


@task(cache_policy=NO_CACHE, task_run_name="mirror {part.name}")
def mirror_part_task(
    part: PartPlan, settings: MirrorSettings, progress: Progress, overall: object
) -> PartOutcome:
    on_bytes, handle = part_progress(progress, overall, part)  # type: ignore[arg-type]
    outcome = mirror_part(part, settings, on_bytes=on_bytes)
    handle.finish(outcome.status)
    return outcome


@flow(name="mirror", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=MAX_JOBS))  # type: ignore[arg-type]
def mirror_flow(
    dest: str,
    parts: str = "all",
    base_url: str | None = None,
    jobs: int = 4,
    segments: int = 4,
    extract: bool = False,
    storage_options: SecretDict | None = None,
    progress: bool = True,
) -> MirrorReport:
    """Mirror ``parts`` ('all', 'sample', '0-3,7') from ``base_url`` to ``dest``, ``jobs``
    parts at once, and return a report. Plain parameters, so it deploys as it is;
    ``storage_options`` (credentials) are kept secret in the Prefect UI."""
    settings = MirrorSettings(
        dest=dest,
        parts=tuple(parse_parts(parts)),
        base_url=base_url or data_base_url(),
        storage_options=storage_options.get_secret_value() if storage_options else {},
        jobs=min(jobs, MAX_JOBS),
        segments=segments,
        extract=extract,
    )
    start = time.monotonic()
    with mirror_lock(settings), progress_for(progress) as bars:
        plan = plan_mirror(settings)
        check_space(plan)
        overall = bars.task("all parts", total=plan.total_bytes, unit="bytes")
        waiting = list(plan.parts)
        running: list[PrefectFuture[PartOutcome]] = []
        outcomes: list[PartOutcome] = []
        while waiting or running:
            while waiting and len(running) < settings.jobs:  # at most `jobs` parts at once
                running.append(mirror_part_task.submit(waiting.pop(0), settings, bars, overall))
            finished = next(as_completed(running))
            running.remove(finished)
            outcomes.append(finished.result())
        overall.finish(
            "done" if all(o.status != "failed" for o in outcomes) else "some parts failed"
        )
    order = {p.name: i for i, p in enumerate(plan.parts)}
    fs, root = resolve(settings.dest, settings.storage_options)
    report = MirrorReport(
        dest=to_url(fs, root),
        outcomes=tuple(sorted(outcomes, key=lambda o: order[o.name])),
        seconds=time.monotonic() - start,
    )
    create_markdown_artifact(
        markdown=report.markdown(), key="mirror-report", description=f"mirror of {report.dest}"
    )
    return report
