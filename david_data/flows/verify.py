"""Prefect flow for ``david-data verify``: each part a task (or a task of the Dask cluster
at ``dask_address``).

Thin: plan with :func:`david_data.mirror.plan_verify`, run the engine
(:func:`david_data.mirror.run_verify`), publish the report. The run ends Failed (the
summary as its message) when any part is not good or the run was interrupted.
"""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data.mirror import VerifyReport, VerifySettings, plan_verify, run_verify
from david_data.progress import LogProgress

from ._executor import flow_executor, publish, stops_cleanly


@flow(name="verify", log_prints=True)
@stops_cleanly
def verify_flow(
    dest: str,
    quick: bool = False,
    jobs: int = 4,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
) -> VerifyReport:
    """Re-check the mirror at ``dest`` against its manifest, ``jobs`` parts at once;
    ``storage_options`` (credentials) are kept secret in the Prefect UI."""
    plan = plan_verify(
        VerifySettings(
            dest=dest,
            storage_options=storage_options.get_secret_value() if storage_options else {},
            quick=quick,
            jobs=jobs,
        )
    )
    with flow_executor("threads", plan.settings.jobs, dask_address=dask_address) as ex:
        report = run_verify(plan, ex, progress=LogProgress())
    return publish(report, key="verify-report", description=f"verify of {report.dest}")
