"""Prefect flow for ``david-data convert``: one task per part (its shards), parts in parallel.

All logic lives in :mod:`david_data.convert`. The flow plans, prepares the store, opens
one pool of ``workers`` processes (:class:`~david_data.convert.run.ShardRunner`) shared
by the part tasks, and publishes a markdown artifact. CPU work runs in the processes:
decoding PNG/EXR holds the GIL too much for threads to scale.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types import SecretDict

import flows  # noqa: F401  (deployments load this file by path; the package sets the log level)
from david_data.format.layout import StoreLayout
from david_data.convert.plan import ConversionPlan, plan_conversion
from david_data.convert.run import (
    ConversionReport,
    ShardResult,
    ShardRunner,
    part_tasks,
    prepare_store,
    summarise,
)
from david_data.convert.source import Source, open_source
from david_data.progress import progress_for


@task(cache_policy=NO_CACHE, task_run_name="convert {part}", retries=1, retry_delay_seconds=5)
def convert_part_task(
    part: str,
    plan: ConversionPlan,
    source: Source,
    layout: StoreLayout,
    runner: ShardRunner,
    overall: Any,
    storage_options: dict[str, Any] | None,
    source_options: dict[str, Any] | None,
) -> list[ShardResult]:
    tasks = part_tasks(
        plan, source, layout, part, storage_options=storage_options, source_options=source_options
    )
    return runner.run(tasks, overall)


# Part tasks only feed the shared process pool (`workers` processes do the CPU work), so
# a fixed number of threads is enough whatever `workers` is.
@flow(name="convert", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=8))  # type: ignore[arg-type]
def convert_flow(
    source_url: str,
    store_url: str,
    parts: list[str] | None = None,
    profile: str = "fast",
    shard_size: int | None = None,
    workers: int = 1,
    storage_options: SecretDict | None = None,
    source_options: SecretDict | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> ConversionReport:
    """Convert ``parts`` of ``source_url`` into the store at ``store_url``. Storage options
    (credentials) are kept secret in the Prefect UI."""
    store_opts = storage_options.get_secret_value() if storage_options else None
    source_opts = source_options.get_secret_value() if source_options else None
    start = time.monotonic()
    source = open_source(source_url, source_opts)
    plan = plan_conversion(
        source,
        store_url,
        parts=parts,
        profile=profile,
        shard_size=shard_size,
        storage_options=store_opts,
    )
    if dry_run or not plan.jobs:
        return dataclasses.replace(summarise(plan, [], time.monotonic() - start), dry_run=dry_run)
    layout = prepare_store(plan, source, store_opts)
    results: list[ShardResult] = []
    with progress_for(progress) as bars, ShardRunner(workers) as runner:
        overall = bars.task("converting", total=plan.samples_to_write, unit="samples")
        futures = [
            convert_part_task.submit(
                part, plan, source, layout, runner, overall, store_opts, source_opts
            )
            for part in plan.jobs_by_part()
        ]
        for future in futures:
            results += future.result()
        overall.finish("done")
    report = summarise(plan, results, time.monotonic() - start)
    create_markdown_artifact(
        markdown=report.markdown(), key="convert-report", description=f"conversion into {store_url}"
    )
    return report
