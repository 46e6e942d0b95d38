"""Inference into a run of a store as a Prefect flow (``david-data infer --from-store STORE``
without OUTPUT): the library's engine, each unit (whole shards) a Prefect task, or a task
of the Dask cluster at ``dask_address``."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.infer.into_run import RunReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

INFER_RUN = jobs.infer_run()


@flow(name="infer-run", log_prints=True)
@stops_cleanly
def infer_run_flow(
    store: str,
    model: str | None = None,
    model_path: str | None = None,
    task: str | None = None,
    run: str | None = None,
    query: str | None = None,
    ids: str | None = None,
    device: str = "auto",
    batch_size: str | int | None = None,
    samples_per_task: str | int = 64,
    workers: str | int = 2,
    storage_options: SecretDict | None = None,
    dask_address: str | None = None,
) -> RunReport:
    """Predict the samples of ``store`` (``query``/``ids`` select) into its run ``run``
    (default: named after the model), resumably. Numbers may come as text
    (``--param batch_size=8``): the settings check and convert them."""
    plan = INFER_RUN.plan(job_settings(INFER_RUN.settings, locals()))
    print(plan.describe())
    with flow_executor(INFER_RUN, plan, dask_address=dask_address, retries=2) as ex:
        report = INFER_RUN.run(plan, ex, progress=LogProgress())
    return publish(report, key="infer-run", description=f"DAViD inference into run {report.run}")
