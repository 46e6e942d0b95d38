"""Sample-level fetch as a Prefect flow: the library's engine, each group of ranged
requests a Prefect task (or a task of the Dask cluster at ``dask_address``). Parameters
mirror ``david-data fetch``."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data.fetch.plan import fetch_settings, plan_fetch
from david_data.fetch.report import FetchReport
from david_data.fetch.run import run_fetch
from david_data.progress import LogProgress

from ._executor import flow_executor, publish, stops_cleanly


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
    plan = plan_fetch(
        fetch_settings(
            dest,
            base_url=base_url,
            parts=None if parts is None else str(parts),
            where=where,
            ids=None if ids is None else str(ids),
            limit=limit,
            seed=seed,
            jobs=jobs,
            storage_options=storage_options.get_secret_value() if storage_options else None,
        )
    )
    print(plan.describe())
    with flow_executor("threads", plan.settings.jobs, dask_address=dask_address) as ex:
        report = run_fetch(plan, ex, progress=LogProgress())
    return publish(report, key="fetch-report", description=f"fetch into {dest}")
