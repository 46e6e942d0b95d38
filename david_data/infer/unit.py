"""The work unit of an inference run: :func:`run_batch` runs one :class:`ImageBatch`
through the model pipeline and writes its results file (plain data in, plain data out;
runs in a thread here, a process, a Dask worker or a Prefect task).

Inside a batch, reading, decoding and pre-processing run ahead of the model in threads,
post-processing, encoding and writing behind it (``_pipeline``); queues are bounded, so
memory depends on ``batch_size``, never on the collection's size. The outputs of one model
call are committed together: their files synced in one pass, then their markers
(outputs.py). A bad input (corrupt, truncated, not an image, unreadable) becomes a
``failed`` row with the reason and the batch goes on. A stop request (Ctrl-C) is polled
between images: the batch returns what it committed, the rest is done by the next run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import stop_requested
from ..errors import ConfigError
from ..fsutil import resolve, to_url
from ._checks import model_sha256
from ._pipeline import ModelPipeline
from .inputs import InputItem, open_reader
from .outputs import OUTPUT_KINDS, WrittenSet, commit_outputs, encode_outputs, write_outputs
from .plan import InferUnit, result_row
from .results import STATUS_FAILED, STATUS_OK, ResultRow, write_batch_results

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    """What a unit returns: one row per input it finished, and how many it left (stop)."""

    index: int
    rows: list[ResultRow]
    not_run: int = 0


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {text}"


def run_batch(unit: InferUnit, on_image: Callable[[ResultRow], None] | None = None) -> BatchResult:
    """The work unit: run one batch, write its results file; a row per input finished.

    The model is loaded once per process (``batch_model`` caches it) and reused by every
    batch that process runs. ``on_image`` (only where the unit runs in the caller's
    process) hears of each input as it finishes. Stops between images on a stop request.
    """
    from .model import batch_model
    from .runtime import postprocess, preprocess

    job, batch = unit.job, unit.batch
    s = job.settings
    assert s.model_path is not None and s.task is not None and s.batch_size is not None
    model = batch_model(s.model_path, s.task, s.device, s.model_threads)
    sha = model_sha256(s.model_path)  # this worker's file must be the one planned
    if sha != job.model_sha256:
        raise ConfigError(
            f"model file {s.model_path} differs from the one the run was planned with "
            f"(sha256 {sha[:12]}, planned {job.model_sha256[:12]}): it changed, or this worker "
            "has another file at that path; give every worker the same file and run again"
        )
    fs, root = resolve(s.output, s.storage_options)
    reader = open_reader(job.source)

    def prepare(item: InputItem) -> tuple[np.ndarray, Any]:
        image = reader.read(item)
        chw, info = preprocess(image)
        return chw, (info, image if s.vis else None)

    written: dict[str, WrittenSet] = {}  # input -> its files, until its group is committed

    def finish(
        item: InputItem, raw: dict[str, np.ndarray], context: Any, seconds: float
    ) -> ResultRow:
        start = time.perf_counter()
        info, image = context
        files = encode_outputs(postprocess(raw, info), image)
        written[item.rel] = write_outputs(
            fs,
            root,
            item.rel,
            files,
            model_sha256=job.model_sha256,
            input_url=reader.url(item),
            input_key=item.key,
            stale_markers=batch.stale_markers.get(item.rel, ()),
            direct=True,  # commit() syncs them: straight to the disk, no page-cache copy
        )
        urls = {kind: to_url(fs, p) for kind, p in written[item.rel].paths.items()}
        elapsed = seconds + time.perf_counter() - start
        return result_row(job, item, reader.url(item), STATUS_OK, elapsed, batch.index, paths=urls)

    def commit(rows: list[ResultRow]) -> list[ResultRow]:
        """Sync the files of one model call's inputs, then write their markers."""
        start = time.perf_counter()
        sets = [written.pop(r.input) for r in rows if r.status == STATUS_OK]
        changes: dict[str, Any] = {}
        try:
            commit_outputs(fs, sets)
        except Exception as exc:  # e.g. the disk is full: no markers, the rows fail
            logger.warning("%s: could not commit outputs: %s", batch.label, _reason(exc))
            changes = dict(status=STATUS_FAILED, error=_reason(exc), **dict.fromkeys(OUTPUT_KINDS))
        share = (time.perf_counter() - start) / max(len(sets), 1)
        return [
            dataclasses.replace(r, seconds=r.seconds + share, **changes)
            if r.status == STATUS_OK
            else r
            for r in rows
        ]

    def fail(item: InputItem, exc: BaseException, seconds: float) -> ResultRow:
        logger.warning("%s: failed: %s", item.rel, _reason(exc))
        return result_row(
            job, item, reader.url(item), STATUS_FAILED, seconds, batch.index, error=_reason(exc)
        )

    done = ModelPipeline(
        prepare=prepare,
        run_model=model.run,
        finish=finish,
        fail=fail,
        batch_size=s.batch_size,
        threads=s.io_threads,
        on_result=on_image,
        should_stop=stop_requested,
        commit=commit,
    ).run(batch.items)
    rows = [r for r in done if r is not None]
    if rows:
        write_batch_results(fs, root, job.run_id, batch.index, rows)
    logger.info(
        "%s: %d ok, %d failed%s -> %s",
        batch.label,
        sum(r.status == STATUS_OK for r in rows),
        sum(r.status != STATUS_OK for r in rows),
        f", {len(batch.items) - len(rows)} left (stopped)" if len(rows) < len(batch.items) else "",
        to_url(fs, root),
    )
    return BatchResult(index=batch.index, rows=rows, not_run=len(batch.items) - len(rows))


def failed_batch(unit: InferUnit, exc: BaseException) -> BatchResult:
    """Rows recording every input of a batch that could not run at all (e.g. its worker
    died twice, or it has another model file)."""
    reason = f"the batch could not run: {_reason(exc)}"
    rows = [
        result_row(
            unit.job,
            item,
            item.path or item.rel,
            STATUS_FAILED,
            0.0,
            unit.batch.index,
            error=reason,
        )
        for item in unit.batch.items
    ]
    return BatchResult(index=unit.batch.index, rows=rows)
