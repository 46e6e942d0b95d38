"""Prefect flow for ``david-data browse``: each group of samples' pictures a task run on a
pool of processes (or a task of the Dask cluster at ``dask_address``).

Thin: plan with :func:`david_data.browse.plan_browse`, run the engine
(:func:`~david_data.browse.run_browse`), publish the report. The run ends Failed when a
sample's pictures could not be drawn or the run was interrupted.
"""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data.browse import BrowseReport, BrowseSettings, plan_browse, run_browse
from david_data.progress import LogProgress

from ._executor import flow_executor, publish, stops_cleanly


@flow(name="browse", log_prints=True)
@stops_cleanly
def browse_flow(
    store_url: str,
    output: str,
    runs: list[str] | None = None,
    query: str | None = None,
    workers: int = 1,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
) -> BrowseReport:
    """Write the browse report of ``store_url`` into the local folder ``output`` (``runs``:
    the runs shown, all when None; ``query``: the samples, all when None)."""
    plan = plan_browse(
        BrowseSettings(
            store_url=store_url,
            output=output,
            runs=tuple(runs) if runs is not None else None,
            query=query,
            workers=workers,
            storage_options=storage_options.get_secret_value() if storage_options else None,
        )
    )
    with flow_executor("processes", plan.settings.workers, dask_address=dask_address) as ex:
        report = run_browse(plan, ex, progress=LogProgress())
    return publish(report, key="browse-report", description=f"browse report of {store_url}")
