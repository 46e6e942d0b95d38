"""Batch inference as a Prefect flow: the library's engine, each batch a Prefect task
(or a task of the Dask cluster at ``dask_address``). Parameters mirror ``david-data infer``:
without ``output``, the samples of ``store`` are inferred into a run of that store."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data.errors import ConfigError
from david_data.infer.batch import (
    InferenceReport,
    InferSettings,
    plan_inference,
    run_inference,
)
from david_data.infer.into_run import RunReport, RunSettings, plan_run, run_into_store
from david_data.progress import LogProgress

from ._executor import flow_executor, publish, stops_cleanly


@flow(name="infer", log_prints=True)
@stops_cleanly
def infer_flow(
    output: str | None = None,
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
    run: str | None = None,
    ids: str | None = None,
) -> InferenceReport | RunReport:
    """Run a DAViD model over an image collection (or store samples), resumably; with
    ``store`` and no ``output``, into the store's run ``run``. Numbers may come as text
    (``--param batch_size=8``): the settings check and convert them."""
    options = storage_options.get_secret_value() if storage_options else {}
    if output is None and store is not None:
        run_plan = plan_run(
            RunSettings(
                store=store,
                model=model,
                model_path=model_path,
                task=task,
                run=run,
                query=query,
                ids=ids,
                device=device,
                batch_size=batch_size,  # type: ignore[arg-type]  # --param text: settings convert it
                samples_per_task=images_per_task,  # type: ignore[arg-type]  # --param text
                workers=workers,  # type: ignore[arg-type]  # --param text: settings convert it
                storage_options=options,
            )
        )
        print(run_plan.describe())
        s = run_plan.settings
        with flow_executor("threads", s.workers, dask_address=dask_address, retries=2) as ex:
            into = run_into_store(run_plan, ex, progress=LogProgress())
        return publish(into, key="infer-run", description=f"DAViD inference into run {s.run}")
    if output is None:
        raise ConfigError("give output (a folder), or store without output to write a run")
    plan = plan_inference(
        InferSettings(
            output=output,
            input=input,
            store=store,
            query=query,
            model=model,
            model_path=model_path,
            task=task,
            device=device,
            batch_size=batch_size,  # type: ignore[arg-type]  # --param text: settings convert it
            images_per_task=images_per_task,  # type: ignore[arg-type]  # --param text: settings convert it
            workers=workers,  # type: ignore[arg-type]  # --param text: settings convert it
            vis=vis,
            storage_options=options,
        )
    )
    print(plan.describe())
    with flow_executor("threads", plan.settings.workers, dask_address=dask_address, retries=2) as ex:
        report = run_inference(plan, ex, progress=LogProgress())
    return publish(report, key="infer-run", description=f"DAViD batch inference into {output}")
