"""Prefect flow for ``david-data browse``: each group of samples' pictures a task run on a
pool of processes (or a task of the Dask cluster at ``dask_address``).

Thin: plan with :func:`david_data.browse.plan_browse`, run the engine
(:func:`~david_data.browse.run_browse`), publish the report. The run ends Failed when a
sample's pictures could not be drawn or the run was interrupted.
"""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.browse import BrowseReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

BROWSE = jobs.browse()


@flow(name="browse", log_prints=True)
@stops_cleanly
def browse_flow(
    store_url: str,
    output: str,
    runs: list[str] | None = None,
    query: str | None = None,
    workers: str | int = 1,
    storage_options: SecretDict | None = None,
    dask_address: str | None = None,
) -> BrowseReport:
    """Write the browse report of ``store_url`` into the local folder ``output`` (``runs``:
    the runs shown, all when None; ``query``: the samples, all when None)."""
    plan = BROWSE.plan(job_settings(BROWSE.settings, locals()))
    with flow_executor(BROWSE, plan, dask_address=dask_address) as ex:
        report = BROWSE.run(plan, ex, progress=LogProgress())
    return publish(report, key="browse-report", description=f"browse report of {store_url}")
