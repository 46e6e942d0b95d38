"""Prefect flow for ``david-data verify-store``: each group of samples a task run on a pool
of processes (or a task of the Dask cluster at ``dask_address``).

Thin: plan with :func:`david_data.convert.verify_store.plan_verify_store`, run the engine
(:func:`~david_data.convert.verify_store.run_verify_store`), publish the report. The run
ends Failed when a sample differs, was not checked, or the run was interrupted.
"""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.convert.verify_store import VerifyStoreReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

VERIFY_STORE = jobs.verify_store()


@flow(name="verify-store", log_prints=True)
@stops_cleanly
def verify_store_flow(
    store_url: str,
    source_url: str,
    sample: int | None = None,
    seed: int = 0,
    workers: int = 1,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
    source_options: SecretDict | None = None,
) -> VerifyStoreReport:
    """Compare the store at ``store_url`` with ``source_url`` (``sample`` random samples,
    all when None). Storage options (credentials) are kept secret in the Prefect UI."""
    plan = VERIFY_STORE.plan(job_settings(VERIFY_STORE.settings, locals()))
    with flow_executor(VERIFY_STORE, plan, dask_address=dask_address, retries=1) as ex:
        report = VERIFY_STORE.run(plan, ex, progress=LogProgress())
    return publish(report, key="verify-store-report", description=f"verify of {store_url}")
