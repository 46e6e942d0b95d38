"""Run an inference plan: check every worker, run the batches through an executor
(threads here, a Dask cluster, Prefect tasks in a flow), count progress, report.

::

    run_inference(plan, executor, progress=)  -> InferenceReport
        _prepare_run: OUTPUT exists, every worker sees the model, the inputs and OUTPUT
        run_units(executor, run_batch, units)  (unit.py; failed_batch when one cannot run)
        finish_run: the run's results table, the report (report.py)
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from ..engine import Executor, run_units
from ..fsutil import atomic_write_bytes, join, resolve, to_url
from ..progress import NullProgress, Progress
from ._checks import check_workers
from .plan import InferencePlan, InferUnit
from .report import InferenceReport, finish_run
from .results import RUNS_DIR, ResultRow
from .unit import BatchResult, failed_batch, run_batch

logger = logging.getLogger(__name__)


def _prepare_run(plan: InferencePlan, executor: Executor) -> None:
    """Before the first batch: OUTPUT exists, and every worker can read the model and see
    the inputs and OUTPUT (a probe file written here must be visible there)."""
    s = plan.settings
    fs, root = resolve(s.output, s.storage_options)
    fs.makedirs(root, exist_ok=True)
    probe = join(root, RUNS_DIR, f".probe-{plan.job.run_id}")
    atomic_write_bytes(fs, probe, b"")
    first = plan.batches[0].items[0]
    paths = [to_url(fs, probe)]
    if plan.job.source.store is not None:
        paths.append(plan.job.source.store)
    else:
        src_fs, _ = resolve(plan.job.source.url or "", s.storage_options)
        paths.append(to_url(src_fs, first.path))
    try:
        assert s.model_path is not None
        check_workers(executor, s.model_path, plan.job.model_sha256, paths, s.storage_options)
    finally:
        fs.rm_file(probe)


def run_inference(
    plan: InferencePlan, executor: Executor, *, progress: Progress | None = None
) -> InferenceReport:
    """Run every batch of ``plan`` on ``executor`` and report (see the module docstring)."""
    start = time.perf_counter()
    results: list[BatchResult] = []
    interrupted = False
    left = 0
    if plan.batches:
        _prepare_run(plan, executor)
        logger.info(
            "run %s: %d to do in %d batch(es) on %s (%d already done)",
            plan.job.run_id,
            plan.todo,
            len(plan.batches),
            executor.description,
            plan.skipped,
        )
        bar = (progress or NullProgress()).task("infer", total=plan.todo, unit="images")
        counted: Counter[int] = Counter()
        lock = threading.Lock()

        def on_image(row: ResultRow) -> None:
            with lock:
                counted[row.batch] += 1
            bar.advance(1)

        def on_result(unit: InferUnit, result: BatchResult) -> None:
            with lock:
                rest = len(result.rows) - counted[unit.batch.index]
            bar.advance(max(rest, 0))

        fn: Callable[[InferUnit], BatchResult] = (
            functools.partial(run_batch, on_image=on_image) if executor.in_process else run_batch
        )
        units = [InferUnit(job=plan.job, batch=b) for b in plan.batches]
        outcome = run_units(
            executor,
            fn,
            units,
            label=lambda u: u.label,
            on_error=failed_batch,
            on_result=on_result,
        )
        results = outcome.results
        interrupted = outcome.interrupted
        left = sum(len(u.batch.items) for u in outcome.not_run) + sum(r.not_run for r in results)
        bar.finish("interrupted" if interrupted else "done")
    rows = [row for result in results for row in result.rows]
    return finish_run(
        plan, rows, time.perf_counter() - start, interrupted=interrupted, not_run=left
    )
