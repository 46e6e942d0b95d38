"""Prefect flow for ``david-data verify``: each part (each sample of a fetch folder) a
task, or a task of the Dask cluster at ``dask_address``.

Thin: plan with :func:`david_data.mirror.verify.plan_folder_verify`, run the engine
(:func:`david_data.mirror.verify.run_folder_verify`), publish the report. The run ends Failed (the
summary as its message) when any part is not good or the run was interrupted.
"""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.fetch.verify import FetchVerifyReport
from david_data.mirror import VerifyReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

VERIFY = jobs.verify()


@flow(name="verify", log_prints=True)
@stops_cleanly
def verify_flow(
    dest: str,
    quick: bool = False,
    jobs: int = 4,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
) -> VerifyReport | FetchVerifyReport:
    """Re-check the mirror (or fetch folder) at ``dest`` against its manifest, ``jobs``
    parts (or samples) at once; ``storage_options`` (credentials) are kept secret in the
    Prefect UI."""
    plan = VERIFY.plan(job_settings(VERIFY.settings, locals()))
    with flow_executor(VERIFY, plan, dask_address=dask_address) as ex:
        report = VERIFY.run(plan, ex, progress=LogProgress())
    return publish(report, key="verify-report", description=f"verify of {report.dest}")
