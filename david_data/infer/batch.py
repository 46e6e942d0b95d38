"""Batch inference over an image collection: plan what is left, run it batch by batch.

Plan, then run (one engine, see :mod:`david_data.engine`)::

    plan_inference(settings)                  -> InferencePlan: the model checked, inputs
                                                 already done (skipped), batches to do,
                                                 inputs rejected up front
    run_inference(plan, executor, progress=)  -> InferenceReport; the batches run through
                                                 ``run_units`` (threads here, or a Dask
                                                 cluster, or Prefect tasks in a flow)
    run_batch(unit)                           -> BatchResult: a ResultRow per input (the
                                                 work unit: plain data in, plain data out)

Inside a batch, reading, decoding and pre-processing run ahead of the model in threads,
post-processing, encoding and writing behind it (see ``_pipeline``); queues are bounded,
so memory depends on ``batch_size``, never on the collection's size. The outputs of one
model call are committed together: their files synced in one pass, then their markers
(outputs.py). A bad input (corrupt,
truncated, not an image, unreadable) becomes a ``failed`` row with the reason and the
batch goes on. Resume is "plan again": inputs whose outputs carry the commit marker of
this model and of the input as it is now (its key: size and mtime or ETag) are skipped;
a replaced input is computed again (results.py). A stop request (Ctrl-C) is polled
between images: the batch returns what it committed, the rest is done by the next run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import Executor, run_units, stop_requested
from ..engine.report import INTERRUPTED_HINT
from ..errors import ConfigError
from ..facts import MODEL_TASKS
from ..fsutil import atomic_write_bytes, join, resolve, to_url
from ..progress import NullProgress, Progress
from ._checks import (
    check_model,
    check_workers,
    check_writable,
    model_sha256,
    positive_int,
)
from ._pipeline import run_pipeline
from .inputs import InputItem, InputSource, list_inputs, open_reader
from .outputs import (
    OUTPUT_KINDS,
    WrittenSet,
    commit_outputs,
    encode_outputs,
    output_stem,
    write_outputs,
)
from .results import (
    RUNS_DIR,
    STATUS_FAILED,
    STATUS_OK,
    ResultRow,
    check_done,
    new_run_id,
    write_batch_results,
    write_run_results,
)
from .session import DEVICES

logger = logging.getLogger(__name__)

TASK_KINDS = {
    "depth": ("depth",),
    "normal": ("normal",),
    "foreground": ("foreground",),
    "multitask": ("depth", "normal", "foreground"),
}
"""Model task -> the output kinds it writes (``vis`` is added by ``--vis``)."""


@dataclass(frozen=True, kw_only=True)
class InferSettings:
    """What a user asks for (the CLI's options and the flow's parameters, 1:1)."""

    output: str
    """Local folder or fsspec URL the outputs go under."""
    input: str | None = None
    """Local folder, file or glob, or fsspec URL or glob (or ``store``)."""
    store: str | None = None
    """A converted SynthHuman store to take the inputs from (``--from-store``)."""
    query: str | None = None
    """With ``store``: SQL selecting samples."""
    model: str | None = None
    """A released model's name (from the cache), or ``model_path``."""
    model_path: str | None = None
    """Any DAViD-shaped ONNX file."""
    task: str | None = None
    """``depth``, ``normal``, ``foreground`` or ``multitask``; None: read from the model."""
    device: str = "auto"
    batch_size: int = 4
    """Images per model call."""
    images_per_task: int = 64
    """Images per batch (one work unit, one results file)."""
    workers: int = 2
    """Batches at once on this machine (a Dask cluster runs as many as it has threads)."""
    vis: bool = False
    """Also write ``NAME.vis.png`` panels."""
    io_threads: int = 4
    """Threads reading/decoding ahead of the model, and as many writing behind it."""
    model_threads: int | None = None
    """ONNX Runtime intra-op threads (None: its default)."""
    storage_options: dict[str, Any] = field(default_factory=dict)
    """fsspec options for the input, the output and the store."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "images_per_task", "workers", "io_threads"):
            option = "--" + name.replace("_", "-")
            object.__setattr__(self, name, positive_int(option, getattr(self, name)))
        if self.task is not None and self.task not in MODEL_TASKS:
            raise ConfigError(
                f"unknown task {self.task!r}; expected one of {', '.join(MODEL_TASKS)}"
            )
        if self.device not in DEVICES:
            raise ConfigError(
                f"unknown device {self.device!r}; expected one of {', '.join(DEVICES)}"
            )
        self.source()  # either an input or a store, --query only with a store

    def source(self) -> InputSource:
        return InputSource(
            url=self.input, store=self.store, query=self.query, storage_options=self.storage_options
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        """Output kinds each input gets (the task must be known)."""
        assert self.task is not None, "the task is resolved by plan_inference"
        return TASK_KINDS[self.task] + (("vis",) if self.vis else ())


@dataclass(frozen=True, kw_only=True)
class InferJob:
    """What every batch of a run shares: plain data, every path absolute or a full URL."""

    source: InputSource
    settings: InferSettings
    """The user's settings with ``output`` and ``model_path`` absolute, ``task`` resolved."""
    model_sha256: str
    run_id: str


@dataclass(frozen=True, kw_only=True)
class Batch:
    """A slice of the inputs still to do."""

    index: int
    items: tuple[InputItem, ...]
    stale_markers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        n = len(self.items)
        return f"batch-{self.index:04d} ({n} image{'' if n == 1 else 's'})"


@dataclass(frozen=True, kw_only=True)
class InferUnit:
    """One work unit: a batch and the job it belongs to (pickles; runs anywhere)."""

    job: InferJob
    batch: Batch

    @property
    def label(self) -> str:
        return self.batch.label


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    """What a unit returns: one row per input it finished, and how many it left (stop)."""

    index: int
    rows: list[ResultRow]
    not_run: int = 0


@dataclass(frozen=True, kw_only=True)
class InferencePlan:
    """Everything a run will do, as plain data (``--dry-run`` prints it)."""

    job: InferJob
    input_root: str
    total: int
    """Inputs found."""
    skipped: int
    """Inputs whose outputs are already complete for this model and this input."""
    orphaned: int
    """Output sets under OUTPUT whose input is gone (removed or renamed); left in place."""
    batches: tuple[Batch, ...]
    rejected: tuple[ResultRow, ...]
    """Inputs refused before running (e.g. two inputs that would write the same outputs)."""

    @property
    def settings(self) -> InferSettings:
        return self.job.settings

    @property
    def todo(self) -> int:
        return sum(len(b.items) for b in self.batches)

    def describe(self) -> str:
        s = self.job.settings
        lines = [
            f"run {self.job.run_id}: {self.total} input(s) from {self.job.source.describe()}",
            f"  model {s.model_path} ({s.task}, sha256 {self.job.model_sha256[:12]}), device {s.device}",
            f"  outputs {', '.join(s.kinds)} under {s.output}",
            f"  already done: {self.skipped}; to do: {self.todo} in {len(self.batches)} batch(es) "
            f"of up to {s.images_per_task} (model batch {s.batch_size})",
        ]
        if self.orphaned:
            lines.append(f"  {_orphans(self.orphaned)}")
        if self.rejected:
            lines.append(f"  rejected: {len(self.rejected)}")
            lines += [f"    {r.input}: {r.error}" for r in self.rejected[:20]]
        lines += [f"  {b.label}: {b.items[0].rel} ... {b.items[-1].rel}" for b in self.batches[:10]]
        if len(self.batches) > 10:
            lines.append(f"  ... {len(self.batches) - 10} more batch(es)")
        return "\n".join(lines)


def _orphans(count: int) -> str:
    return (
        f"{count} output set(s) under OUTPUT match no input of this run (input removed or "
        "renamed); left in place"
    )


@dataclass(frozen=True, kw_only=True)
class InferenceReport:
    """The outcome of a run (implements :class:`david_data.engine.JobReport`)."""

    run_id: str
    source: str
    output: str
    model: str
    task: str
    model_sha256: str
    total: int
    skipped: int
    ok: int
    failed: int
    not_run: int
    """Inputs left for the next run because the run was interrupted."""
    orphaned: int
    failures: tuple[tuple[str, str], ...]
    """(input, reason) of every failed input."""
    seconds: float
    results_path: str | None
    """The run's results table, or None when there was nothing to do."""
    interrupted: bool = False

    @property
    def failure_count(self) -> int:
        return self.failed

    @property
    def processed(self) -> int:
        return self.ok + self.failed

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """What the CLI prints."""
        left = f", {self.not_run} not run" if self.not_run else ""
        lines = [
            f"{self.total} input(s): {self.ok} done, {self.failed} failed, {self.skipped} already "
            f"done{left} ({self.processed} in {self.seconds:.1f} s, "
            f"{self.images_per_second:.2f} images/s)",
        ]
        if self.orphaned:
            lines.append(_orphans(self.orphaned))
        if self.results_path:
            lines.append(f"results table: {self.results_path}")
        lines += [f"FAILED {name}: {reason}" for name, reason in self.failures[:50]]
        if len(self.failures) > 50:
            lines.append(f"... {len(self.failures) - 50} more failure(s) in the results table")
        return "\n".join(lines)

    def markdown(self) -> str:
        """What a flow publishes as its artifact."""
        lines = [
            f"# Inference run {self.run_id}" + (" (interrupted)" if self.interrupted else ""),
            "",
            "| | |",
            "| --- | --- |",
            f"| input | {self.source} |",
            f"| output | {self.output} |",
            f"| model | {self.model} ({self.task}, sha256 `{self.model_sha256[:12]}`) |",
            f"| images found | {self.total} |",
            f"| already done (skipped) | {self.skipped} |",
            f"| done | {self.ok} |",
            f"| failed | {self.failed} |",
            f"| not run | {self.not_run} |",
            f"| outputs without input | {self.orphaned} |",
            f"| time | {self.seconds:.1f} s |",
            f"| throughput | {self.images_per_second:.2f} images/s |",
            f"| results table | {self.results_path or '-'} |",
        ]
        if self.interrupted:
            lines += ["", INTERRUPTED_HINT]
        if self.failures:
            lines += ["", "## Failures", "", "| input | reason |", "| --- | --- |"]
            lines += [
                f"| {name} | {reason.replace('|', '/')} |" for name, reason in self.failures[:100]
            ]
            if len(self.failures) > 100:
                lines.append(f"| ... | {len(self.failures) - 100} more in the results table |")
        return "\n".join(lines)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def plan_inference(settings: InferSettings, *, run_id: str | None = None) -> InferencePlan:
    """Check the model (once, here), list the inputs, drop those already done for this
    model, cut the rest into batches. Every path in the plan is absolute or a full URL."""
    from .registry import resolve_model

    path, task = resolve_model(settings.model, settings.model_path, settings.task)
    output = to_url(*resolve(settings.output, settings.storage_options))
    check_writable(output, settings.storage_options)
    task = check_model(path, task, device=settings.device, threads=settings.model_threads)
    resolved = dataclasses.replace(
        settings, output=output, model=None, model_path=to_url(*resolve(path)), task=task
    )
    source = settings.source().absolute()
    sha = model_sha256(resolved.model_path)  # type: ignore[arg-type]
    job = InferJob(
        source=source, settings=resolved, model_sha256=sha, run_id=run_id or new_run_id()
    )
    listing = list_inputs(source, exclude=output)
    fs, root = resolve(output, settings.storage_options)
    check = check_done(fs, root, listing.items, model_sha256=sha, kinds=resolved.kinds)
    owners: dict[str, str] = {}
    todo: list[InputItem] = []
    rejected: list[ResultRow] = []
    skipped = 0
    for item in listing.items:
        stem = output_stem(item.rel)
        if stem in owners:
            reason = (
                f"{item.rel}: its outputs {stem}.* would overwrite those of "
                f"{owners[stem]}; rename one of the two"
            )
            rejected.append(_row(job, item, item.path or item.rel, STATUS_FAILED, 0.0, -1, error=reason))
            continue
        owners[stem] = item.rel
        if item.rel in check.done:
            skipped += 1
        else:
            todo.append(item)
    step = resolved.images_per_task
    batches = tuple(
        Batch(
            index=i // step,
            items=tuple(todo[i : i + step]),
            stale_markers={
                it.rel: check.stale_markers[it.rel]
                for it in todo[i : i + step]
                if it.rel in check.stale_markers
            },
        )
        for i in range(0, len(todo), step)
    )
    return InferencePlan(
        job=job,
        input_root=listing.root,
        total=len(listing.items),
        skipped=skipped,
        orphaned=check.orphaned,
        batches=batches,
        rejected=tuple(rejected),
    )


def _row(
    job: InferJob,
    item: InputItem,
    source_url: str,
    status: str,
    seconds: float,
    batch: int,
    *,
    error: str | None = None,
    paths: dict[str, str] | None = None,
) -> ResultRow:
    paths = paths or {}
    return ResultRow(
        input=item.rel,
        source=source_url,
        status=status,
        error=error,
        depth=paths.get("depth"),
        normal=paths.get("normal"),
        foreground=paths.get("foreground"),
        vis=paths.get("vis"),
        model_sha256=job.model_sha256,
        seconds=seconds,
        run_id=job.run_id,
        batch=batch,
        finished_at=_now(),
    )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {text}"


def run_batch(
    unit: InferUnit, on_image: Callable[[ResultRow], None] | None = None
) -> BatchResult:
    """The work unit: run one batch, write its results file; a row per input finished.

    The model is loaded once per process (``load_model`` caches it) and reused by every
    batch that process runs. ``on_image`` (only where the unit runs in the caller's
    process) hears of each input as it finishes. Stops between images on a stop request.
    """
    from .model import load_model
    from .runtime import postprocess, preprocess

    job, batch = unit.job, unit.batch
    s = job.settings
    assert s.model_path is not None and s.task is not None
    model = load_model(s.model_path, s.task, device=s.device, threads=s.model_threads)
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
        )
        urls = {kind: to_url(fs, p) for kind, p in written[item.rel].paths.items()}
        elapsed = seconds + time.perf_counter() - start
        return _row(job, item, reader.url(item), STATUS_OK, elapsed, batch.index, paths=urls)

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
        return _row(
            job, item, reader.url(item), STATUS_FAILED, seconds, batch.index, error=_reason(exc)
        )

    done = run_pipeline(
        batch.items,
        prepare=prepare,
        run_model=model.run,
        finish=finish,
        fail=fail,
        batch_size=s.batch_size,
        threads=s.io_threads,
        on_result=on_image,
        should_stop=stop_requested,
        commit=commit,
    )
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


def _failed_batch(unit: InferUnit, exc: BaseException) -> BatchResult:
    """Rows recording every input of a batch that could not run at all (e.g. its worker
    died twice, or it has another model file)."""
    reason = f"the batch could not run: {_reason(exc)}"
    rows = [
        _row(unit.job, item, item.path or item.rel, STATUS_FAILED, 0.0, unit.batch.index, error=reason)
        for item in unit.batch.items
    ]
    return BatchResult(index=unit.batch.index, rows=rows)


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
            on_error=_failed_batch,
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


def finish_run(
    plan: InferencePlan,
    rows: Sequence[ResultRow],
    seconds: float,
    *,
    interrupted: bool = False,
    not_run: int = 0,
) -> InferenceReport:
    """Write the run's results table (when it did anything) and summarise it."""
    s = plan.settings
    fs, root = resolve(s.output, s.storage_options)
    all_rows = list(plan.rejected) + list(rows)
    path = to_url(fs, write_run_results(fs, root, plan.job.run_id, all_rows)) if all_rows else None
    failed = [r for r in all_rows if r.status != STATUS_OK]
    return InferenceReport(
        run_id=plan.job.run_id,
        source=plan.job.source.describe(),
        output=s.output,
        model=s.model_path or "",
        task=s.task or "",
        model_sha256=plan.job.model_sha256,
        total=plan.total,
        skipped=plan.skipped,
        ok=len(all_rows) - len(failed),
        failed=len(failed),
        not_run=not_run,
        orphaned=plan.orphaned,
        failures=tuple((r.input, r.error or "") for r in failed),
        seconds=seconds,
        results_path=path,
        interrupted=interrupted,
    )
