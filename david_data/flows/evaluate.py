"""Model evaluation against a SynthHuman store as a Prefect flow: the library's engine,
each batch of samples a Prefect task (or a task of the Dask cluster at ``dask_address``).
Parameters mirror ``david-data evaluate``."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.infer.evaluate import EvaluationReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

EVALUATE = jobs.evaluate()


@flow(name="evaluate", log_prints=True)
@stops_cleanly
def evaluate_flow(
    store: str,
    output: str = "evaluation",
    model: str | None = None,
    model_path: str | None = None,
    task: str | None = None,
    query: str | None = None,
    device: str = "auto",
    batch_size: str | int | None = None,
    samples_per_task: str | int = 64,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
    run: str | None = None,
    into_store: bool = True,
) -> EvaluationReport:
    """Run a model over store samples (into a run of the store unless ``into_store`` is
    false), or score run ``run``'s stored predictions, and report the model cards' metrics
    (also written into the store per sample). Numbers may come as text
    (``--param batch_size=8``): the settings check and convert them."""
    plan = EVALUATE.plan(job_settings(EVALUATE.settings, locals()))
    print(plan.describe())
    with flow_executor(EVALUATE, plan, dask_address=dask_address, retries=2) as ex:
        report = EVALUATE.run(plan, ex, progress=LogProgress())
    return publish(report, key="evaluate", description=f"DAViD model evaluation into {output}")
