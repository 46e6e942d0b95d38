"""Prefect flow for ``david-data mirror``: one task per part, parts in parallel.

Thin: plan with :func:`david_data.mirror.plan_mirror`, run the engine
(:func:`david_data.mirror.run_mirror`) on Prefect tasks, publish the report. The run
ends Failed (the summary as its message) when any part failed.
"""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.mirror import MirrorReport
from david_data.progress import progress_for

from ._executor import flow_executor, job_settings, publish, stops_cleanly

MIRROR = jobs.mirror()


@flow(name="mirror", log_prints=True)
@stops_cleanly
def mirror_flow(
    dest: str,
    parts: str | int | None = None,
    base_url: str | None = None,
    jobs: int = 4,
    segments: int = 4,
    extract: bool = False,
    reverify: bool = False,
    require_ranges: bool = False,
    storage_options: SecretDict | None = None,
    progress: bool = True,
) -> MirrorReport:
    """Mirror ``parts`` ('all', 'sample', '0-3,7', 59; None: all, or with ``reverify`` the
    parts already at ``dest``) from ``base_url`` to ``dest``,
    ``jobs`` parts at once. Plain parameters, so it deploys as it is; ``storage_options``
    (credentials) are kept secret in the Prefect UI."""
    plan = MIRROR.plan(job_settings(MIRROR.settings, locals()))
    with progress_for(progress) as bars, flow_executor(MIRROR, plan) as ex:
        report = MIRROR.run(plan, ex, progress=bars)
    return publish(report, key="mirror-report", description=f"mirror of {report.dest}")
