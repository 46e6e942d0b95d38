"""Batch inference as a Prefect flow: the library's engine, each batch a Prefect task
(or a task of the Dask cluster at ``dask_address``). Parameters mirror ``david-data infer``."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.infer.batch import InferenceReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

INFER = jobs.infer()


@flow(name="infer", log_prints=True)
@stops_cleanly
def infer_flow(
    output: str,
    input: str | None = None,
    store: str | None = None,
    query: str | None = None,
    model: str | None = None,
    model_path: str | None = None,
    task: str | None = None,
    device: str = "auto",
    batch_size: str | int | None = None,
    images_per_task: str | int = 64,
    workers: str | int = 2,
    vis: bool = False,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
) -> InferenceReport:
    """Run a DAViD model over an image collection (or store samples), resumably. Numbers
    may come as text (``--param batch_size=8``): the settings check and convert them."""
    plan = INFER.plan(job_settings(INFER.settings, locals()))
    print(plan.describe())
    with flow_executor(INFER, plan, dask_address=dask_address, retries=2) as ex:
        report = INFER.run(plan, ex, progress=LogProgress())
    return publish(report, key="infer-run", description=f"DAViD batch inference into {output}")
