"""Batch inference as a Prefect flow: one task per batch of images.

The library plans (``plan_inference``), runs a batch (``run_batch``) and writes the run's
results table (``finish_run``); this flow adds the task runner (threads locally, an
existing Dask cluster with ``dask_address``), retries, progress and a markdown artifact.
Each batch task writes its own results file, so a killed run loses at most the images in
flight; rerunning plans again and skips what is done.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types import SecretDict

import flows  # noqa: F401  (deployments load this file by path; the package sets the log level)
from david_data.infer.batch import (
    Batch,
    InferencePlan,
    InferenceReport,
    InferJob,
    InferSettings,
    batch_failed_rows,
    finish_run,
    plan_inference,
    resolve_task,
    run_batch,
)
from david_data.infer.inputs import InputSource
from david_data.infer.results import ResultRow
from david_data.progress import progress_for


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def infer_batch(job: InferJob, batch: Batch) -> list[ResultRow]:
    """Run one batch (the model is loaded once per worker process and reused)."""
    return run_batch(job, batch)


def _markdown(report: InferenceReport, plan: InferencePlan) -> str:
    s = plan.job.settings
    lines = [
        f"# Inference run {report.run_id}",
        "",
        "| | |",
        "| --- | --- |",
        f"| input | {plan.job.source.describe()} |",
        f"| output | {report.output} |",
        f"| model | {s.model_path} ({s.task}, sha256 `{report.model_sha256[:12]}`) |",
        f"| images found | {report.total} |",
        f"| already done (skipped) | {report.skipped} |",
        f"| done | {report.ok} |",
        f"| failed | {report.failed} |",
        f"| time | {report.seconds:.1f} s |",
        f"| throughput | {report.images_per_second:.2f} images/s |",
        f"| results table | {report.results_path or '-'} |",
    ]
    if report.failures:
        lines += ["", "## Failures", "", "| input | reason |", "| --- | --- |"]
        lines += [
            f"| {name} | {reason.replace('|', '/')} |" for name, reason in report.failures[:100]
        ]
        if len(report.failures) > 100:
            lines.append(f"| ... | {len(report.failures) - 100} more in the results table |")
    return "\n".join(lines)


@flow(name="infer", log_prints=True)
def infer_flow(
    output: str,
    model_path: str,
    task: str,
    input: str | None = None,
    store: str | None = None,
    query: str | None = None,
    batch_size: int = 4,
    images_per_task: int = 64,
    device: str = "auto",
    vis: bool = False,
    progress: bool = True,
    storage_options: SecretDict | None = None,
) -> InferenceReport:
    """Run a DAViD model over an image collection (or store samples), resumably."""
    options: dict[str, Any] = storage_options.get_secret_value() if storage_options else {}
    source = InputSource(url=input, store=store, query=query, storage_options=options)
    settings = InferSettings(
        output=output,
        model_path=model_path,
        task=task,
        device=device,
        batch_size=batch_size,
        images_per_task=images_per_task,
        vis=vis,
        storage_options=options,
    )
    plan = plan_inference(source, settings)
    print(plan.describe())
    start = time.perf_counter()
    rows: list[ResultRow] = []
    with progress_for(progress) as bars:
        bar = bars.task("infer", total=plan.todo, unit="images")
        futures = {
            infer_batch.with_options(task_run_name=batch.label).submit(plan.job, batch): batch
            for batch in plan.batches
        }
        for future in as_completed(list(futures)):
            batch = futures[future]
            try:
                batch_rows = future.result()
            except Exception as exc:  # the task failed after its retries: record it, go on
                batch_rows = batch_failed_rows(plan.job, batch, f"the batch task failed: {exc}")
            rows += batch_rows
            bar.advance(len(batch_rows))
        report = finish_run(plan, rows, time.perf_counter() - start)
        bar.finish(f"{report.ok} ok, {report.failed} failed")
    create_markdown_artifact(
        _markdown(report, plan), key="infer-run", description="DAViD batch inference"
    )
    print(report.summary())
    return report


def run_infer(
    *,
    output: str,
    model_name: str | None = None,
    model_path: str | None = None,
    task: str | None = None,
    input: str | None = None,
    store: str | None = None,
    query: str | None = None,
    batch_size: int = 4,
    images_per_task: int = 64,
    workers: int = 2,
    dask_address: str | None = None,
    device: str = "auto",
    vis: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> InferenceReport:
    """Resolve the model, pick the task runner and run :func:`infer_flow`.

    ``workers`` batches run at once in threads of this process; with ``dask_address``
    the batches run on that Dask cluster instead (every worker must see ``model_path``).
    """
    from david_data.infer.registry import resolve_model

    path, resolved = resolve_model(model_name, model_path, task)
    resolved = resolve_task(path, resolved, device=device)
    if dask_address:
        from prefect_dask import DaskTaskRunner

        runner: Any = DaskTaskRunner(address=dask_address)
    else:
        runner = ThreadPoolTaskRunner(max_workers=workers)
    return infer_flow.with_options(task_runner=runner)(
        output=output,
        model_path=str(path),
        task=resolved,
        input=input,
        store=store,
        query=query,
        batch_size=batch_size,
        images_per_task=images_per_task,
        device=device,
        vis=vis,
        progress=progress,
        storage_options=SecretDict(storage_options) if storage_options else None,
    )
