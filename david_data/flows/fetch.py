"""Sample-level fetch as a Prefect flow: the library's engine, each group of ranged
requests a Prefect task (or a task of the Dask cluster at ``dask_address``). Parameters
mirror ``david-data fetch``."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.fetch.report import FetchReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

FETCH = jobs.fetch()


@flow(name="fetch", log_prints=True)
@stops_cleanly
def fetch_flow(
    dest: str,
    base_url: str | None = None,
    parts: str | int | None = None,
    where: str | None = None,
    ids: str | int | None = None,
    limit: str | int | None = None,
    seed: str | int = 0,
    jobs: str | int = 8,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
) -> FetchReport:
    """Fetch the samples chosen by ``where`` / ``ids`` / ``limit`` + ``seed`` from the parts
    at ``base_url`` into ``dest``. Storage options (credentials) stay secret in the UI."""
    plan = FETCH.plan(job_settings(FETCH.settings, locals()))
    print(plan.describe())
    with flow_executor(FETCH, plan, dask_address=dask_address) as ex:
        report = FETCH.run(plan, ex, progress=LogProgress())
    return publish(report, key="fetch-report", description=f"fetch into {dest}")
