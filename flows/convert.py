"""Prefect flow for ``david-data convert``: one task per part (its shards), parts in parallel.

All logic lives in :mod:`david_data.convert`. The flow plans, prepares the store, opens
one pool of ``workers`` processes (:class:`~david_data.convert.run.ShardRunner`) shared
by the part tasks, and publishes a markdown artifact. CPU work runs in the processes:
decoding PNG/EXR holds the GIL too much for threads to scale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from david_data.convert.layout import StoreLayout
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
from david_data.progress import LogProgress, Progress, RichProgress


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


@flow(name="convert", validate_parameters=False, log_prints=True)
def convert_flow(
    source_url: str,
    store_url: str,
    parts: list[str] | None = None,
    profile: str = "fast",
    shard_size: int | None = None,
    workers: int = 1,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> ConversionReport:
    """Convert ``parts`` of ``source_url`` into the store at ``store_url``."""
    start = time.monotonic()
    source = open_source(source_url, source_options)
    plan = plan_conversion(
        source,
        store_url,
        parts=parts,
        profile=profile,
        shard_size=shard_size,
        storage_options=storage_options,
    )
    if dry_run or not plan.jobs:
        return dataclasses.replace(summarise(plan, [], time.monotonic() - start), dry_run=dry_run)
    layout = prepare_store(plan, source, storage_options)
    use_rich = progress and sys.stderr.isatty()
    bars: Progress = RichProgress() if use_rich else LogProgress()
    results: list[ShardResult] = []
    with bars if use_rich else contextlib.nullcontext(), ShardRunner(workers) as runner:  # type: ignore[attr-defined]
        overall = bars.task("converting", total=plan.samples_to_write, unit="samples")
        futures = [
            convert_part_task.submit(
                part, plan, source, layout, runner, overall, storage_options, source_options
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


def run_convert_flow(workers: int = 1, **kwargs: Any) -> ConversionReport:
    """Run :func:`convert_flow`; parts run in threads that feed ``workers`` processes."""
    runner = ThreadPoolTaskRunner(max_workers=max(1, workers))
    return convert_flow.with_options(task_runner=runner)(workers=workers, **kwargs)
