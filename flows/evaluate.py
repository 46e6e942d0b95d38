"""Model evaluation against a SynthHuman store as a Prefect flow.

The library plans the sample selection (``plan_evaluation``), scores a batch of samples
(``evaluate_batch``: per-sample rows plus a mergeable accumulator), merges and writes the
tables; this flow runs one task per batch and publishes the metrics as a markdown table.
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
from david_data.infer.evaluate import (
    EvalBatch,
    EvalJob,
    EvaluationReport,
    chunks,
    combine,
    evaluate_batch,
    plan_evaluation,
    report_of,
    write_evaluation,
)
from david_data.progress import progress_for


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def evaluate_samples(job: EvalJob, sample_ids: list[int]) -> EvalBatch:
    """Score one batch of samples (the model is loaded once per process)."""
    return evaluate_batch(job, sample_ids)


@flow(name="evaluate", log_prints=True)
def evaluate_flow(
    store: str,
    model_path: str,
    task: str,
    output: str,
    query: str | None = None,
    batch_size: int = 4,
    samples_per_task: int = 64,
    device: str = "auto",
    progress: bool = True,
    storage_options: SecretDict | None = None,
) -> EvaluationReport:
    """Run a model over store samples and report the model cards' metrics."""
    options: dict[str, Any] = storage_options.get_secret_value() if storage_options else {}
    start = time.perf_counter()
    job, ids = plan_evaluation(
        store,
        model_path,
        task,
        query=query,
        device=device,
        batch_size=batch_size,
        storage_options=options,
    )
    print(f"evaluating {model_path} ({task}) on {len(ids)} sample(s) of {store}")
    batches: list[EvalBatch] = []
    with progress_for(progress) as bars:
        bar = bars.task("evaluate", total=len(ids), unit="samples")
        parts = chunks(ids, samples_per_task)
        futures = [
            evaluate_samples.with_options(
                task_run_name=f"samples-{i:04d} ({len(part)} samples)"
            ).submit(job, part)
            for i, part in enumerate(parts)
        ]
        for future in as_completed(futures):
            result = future.result()
            batches.append(result)
            bar.advance(len(result.rows) + len(result.failures))
        bar.finish()
    evaluation = combine(job, query, batches, time.perf_counter() - start)
    paths = write_evaluation(evaluation, output, options)
    report = report_of(evaluation, paths)
    markdown = [
        f"# Evaluation of `{model_path}` ({task}, sha256 `{job.model_sha256[:12]}`)",
        "",
        f"{report.samples} sample(s) of {store}"
        + (f" where `{query}`" if query else "")
        + f", {len(report.failures)} failed, {report.seconds:.1f} s",
        "",
        report.markdown,
    ]
    create_markdown_artifact(
        "\n".join(markdown), key="evaluate", description="DAViD model evaluation"
    )
    return report


def run_evaluate(
    *,
    store: str,
    output: str,
    model_name: str | None = None,
    model_path: str | None = None,
    task: str | None = None,
    query: str | None = None,
    batch_size: int = 4,
    samples_per_task: int = 64,
    workers: int = 1,
    device: str = "auto",
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> EvaluationReport:
    """Resolve the model and run :func:`evaluate_flow`."""
    from david_data.infer.batch import resolve_task
    from david_data.infer.registry import resolve_model

    path, resolved = resolve_model(model_name, model_path, task)
    runner: Any = ThreadPoolTaskRunner(max_workers=workers)
    flow_fn = evaluate_flow.with_options(task_runner=runner)
    return flow_fn(
        store=store,
        model_path=str(path),
        task=resolve_task(str(path), resolved, device=device),
        output=output,
        query=query,
        batch_size=batch_size,
        samples_per_task=samples_per_task,
        device=device,
        progress=progress,
        storage_options=SecretDict(storage_options) if storage_options else None,
    )
