"""Batch inference over an image collection: plan what is left, run it batch by batch.

Plan, then execute::

    plan_inference(source, settings)  -> InferencePlan: inputs already done (skipped),
                                         batches still to do, inputs rejected up front
    run_batch(job, batch)             -> ResultRow per input (one batch = one Prefect task)
    finish_run(plan, rows, seconds)   -> InferenceReport, writes OUTPUT/_runs/<run>.parquet
    run_plan(plan)                    -> all of the above in this process, without Prefect

Inside a batch, reading, decoding and pre-processing run ahead of the model in threads,
post-processing, encoding and writing behind it (see ``_pipeline``); queues are bounded,
so memory depends on ``batch_size``, never on the collection's size. A bad input (corrupt,
truncated, not an image, unreadable) becomes a ``failed`` row with the reason and the
batch goes on. Resume is "plan again": inputs whose outputs carry this model's commit
marker are skipped (results.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..facts import MODEL_TASKS
from ..fsutil import resolve, to_url
from ..progress import NullProgress, Progress
from ._pipeline import run_pipeline
from .inputs import InputItem, InputSource, list_inputs, open_reader
from .outputs import encode_outputs, output_stem, write_output_set
from .results import (
    STATUS_FAILED,
    STATUS_OK,
    ResultRow,
    check_done,
    new_run_id,
    write_batch_results,
    write_run_results,
)

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
    """How to run a job (plain, picklable data shipped to every worker)."""

    output: str
    """Local folder or fsspec URL the outputs go under."""
    model_path: str
    """Local ONNX file (``resolve_model`` turns ``--model NAME`` into one)."""
    task: str
    """``depth``, ``normal``, ``foreground`` or ``multitask``."""
    device: str = "auto"
    batch_size: int = 4
    """Images per model call."""
    images_per_task: int = 64
    """Images per batch (one Prefect task, one results file)."""
    vis: bool = False
    """Also write ``NAME.vis.png`` panels."""
    io_threads: int = 4
    """Threads reading/decoding ahead of the model, and as many writing behind it."""
    model_threads: int | None = None
    """ONNX Runtime intra-op threads (None: its default)."""
    storage_options: dict[str, Any] = field(default_factory=dict)
    """fsspec options for OUTPUT (inputs carry their own in ``InputSource``)."""

    def __post_init__(self) -> None:
        if self.task not in MODEL_TASKS:
            raise ConfigError(
                f"unknown task {self.task!r}; expected one of {', '.join(MODEL_TASKS)}"
            )
        for name in ("batch_size", "images_per_task", "io_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )

    @property
    def kinds(self) -> tuple[str, ...]:
        """Output kinds each input gets."""
        return TASK_KINDS[self.task] + (("vis",) if self.vis else ())


@dataclass(frozen=True, kw_only=True)
class InferJob:
    """What every batch of a run shares."""

    source: InputSource
    settings: InferSettings
    model_sha256: str
    run_id: str


@dataclass(frozen=True, kw_only=True)
class Batch:
    """One unit of work: a slice of the inputs still to do."""

    index: int
    items: tuple[InputItem, ...]
    stale_markers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        n = len(self.items)
        return f"batch-{self.index:04d} ({n} image{'' if n == 1 else 's'})"


@dataclass(frozen=True, kw_only=True)
class InferencePlan:
    """Everything a run will do, as plain data (``--dry-run`` prints it)."""

    job: InferJob
    input_root: str
    total: int
    """Inputs found."""
    skipped: int
    """Inputs whose outputs are already complete for this model."""
    batches: tuple[Batch, ...]
    rejected: tuple[ResultRow, ...]
    """Inputs refused before running (e.g. two inputs that would write the same outputs)."""

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
        if self.rejected:
            lines.append(f"  rejected: {len(self.rejected)}")
            lines += [f"    {r.input}: {r.error}" for r in self.rejected[:20]]
        lines += [f"  {b.label}: {b.items[0].rel} ... {b.items[-1].rel}" for b in self.batches[:10]]
        if len(self.batches) > 10:
            lines.append(f"  ... {len(self.batches) - 10} more batch(es)")
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class InferenceReport:
    """The outcome of a run (what the CLI prints)."""

    run_id: str
    output: str
    model_sha256: str
    total: int
    skipped: int
    ok: int
    failed: int
    failures: tuple[tuple[str, str], ...]
    """(input, reason) of every failed input."""
    seconds: float
    results_path: str | None
    """The run's results table, or None when there was nothing to do."""

    @property
    def processed(self) -> int:
        return self.ok + self.failed

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"{self.total} input(s): {self.ok} done, {self.failed} failed, {self.skipped} already done "
            f"({self.processed} in {self.seconds:.1f} s, {self.images_per_second:.2f} images/s)",
        ]
        if self.results_path:
            lines.append(f"results table: {self.results_path}")
        lines += [f"FAILED {name}: {reason}" for name, reason in self.failures[:50]]
        if len(self.failures) > 50:
            lines.append(f"... {len(self.failures) - 50} more failure(s) in the results table")
        return "\n".join(lines)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    from .model import file_sha256

    return file_sha256(path)


def model_sha256(path: str) -> str:
    """SHA-256 of a model file, hashed once per process while the file is unchanged."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read model file {path}: {exc}") from exc
    return _file_sha256(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


def plan_inference(
    source: InputSource, settings: InferSettings, *, run_id: str | None = None
) -> InferencePlan:
    """List the inputs, drop those already done for this model, and cut the rest into batches."""
    sha = model_sha256(settings.model_path)
    job = InferJob(
        source=source, settings=settings, model_sha256=sha, run_id=run_id or new_run_id()
    )
    listing = list_inputs(source, exclude=settings.output)
    fs, root = resolve(settings.output, settings.storage_options)
    check = check_done(fs, root, listing.items, model_sha256=sha, kinds=settings.kinds)
    owners: dict[str, str] = {}
    todo: list[InputItem] = []
    rejected: list[ResultRow] = []
    skipped = 0
    for item in listing.items:
        stem = output_stem(item.rel)
        if stem in owners:
            rejected.append(
                _row(
                    job,
                    item,
                    item.path or item.rel,
                    STATUS_FAILED,
                    0.0,
                    -1,
                    error=(
                        f"{item.rel}: its outputs {stem}.* would overwrite those of "
                        f"{owners[stem]}; rename one of the two"
                    ),
                )
            )
            continue
        owners[stem] = item.rel
        if item.rel in check.done:
            skipped += 1
        else:
            todo.append(item)
    step = settings.images_per_task
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
    job: InferJob, batch: Batch, *, on_result: Callable[[ResultRow], None] | None = None
) -> list[ResultRow]:
    """Run one batch and write its results file; returns one row per input, in order.

    The model is loaded once per process (``load_model`` caches it) and reused by every
    batch that process runs.
    """
    from .model import load_model
    from .runtime import postprocess, preprocess

    s = job.settings
    model = load_model(s.model_path, s.task, device=s.device, threads=s.model_threads)
    sha = model_sha256(s.model_path)  # this worker's file must be the one planned
    if sha != job.model_sha256:
        raise ConfigError(
            f"model file {s.model_path} differs from the one the run was planned with "
            f"(sha256 {sha[:12]}, planned {job.model_sha256[:12]}): it changed, or this worker "
            "has another file at that path; give every worker the same file and run again"
        )
    fs, root = resolve(s.output, s.storage_options)
    out_url = to_url(fs, root)
    reader = open_reader(job.source)

    def prepare(item: InputItem) -> tuple[np.ndarray, Any]:
        image = reader.read(item)
        chw, info = preprocess(image)
        return chw, (info, image if s.vis else None)

    def finish(
        item: InputItem, raw: dict[str, np.ndarray], context: Any, seconds: float
    ) -> ResultRow:
        start = time.perf_counter()
        info, image = context
        files = encode_outputs(postprocess(raw, info), image)
        paths = write_output_set(
            fs,
            root,
            item.rel,
            files,
            model_sha256=job.model_sha256,
            input_url=reader.url(item),
            stale_markers=batch.stale_markers.get(item.rel, ()),
        )
        urls = {kind: to_url(fs, p) for kind, p in paths.items()}
        elapsed = seconds + time.perf_counter() - start
        return _row(job, item, reader.url(item), STATUS_OK, elapsed, batch.index, paths=urls)

    def fail(item: InputItem, exc: BaseException, seconds: float) -> ResultRow:
        logger.warning("%s: failed: %s", item.rel, _reason(exc))
        return _row(
            job, item, reader.url(item), STATUS_FAILED, seconds, batch.index, error=_reason(exc)
        )

    rows = run_pipeline(
        batch.items,
        prepare=prepare,
        run_model=model.run,
        finish=finish,
        fail=fail,
        batch_size=s.batch_size,
        threads=s.io_threads,
        on_result=on_result,
    )
    write_batch_results(fs, root, job.run_id, batch.index, rows)
    logger.info(
        "%s: %d ok, %d failed -> %s",
        batch.label,
        sum(r.status == STATUS_OK for r in rows),
        sum(r.status != STATUS_OK for r in rows),
        out_url,
    )
    return rows


def batch_failed_rows(job: InferJob, batch: Batch, reason: str) -> list[ResultRow]:
    """Rows recording every input of a batch that could not run at all (e.g. its worker died)."""
    return [
        _row(job, item, item.path or item.rel, STATUS_FAILED, 0.0, batch.index, error=reason)
        for item in batch.items
    ]


def resolve_task(model_path: str, task: str | None, *, device: str = "auto") -> str:
    """``task`` or, when None, the task read from the model's outputs (loads the model)."""
    if task is not None:
        return task
    from .model import load_model

    return load_model(model_path, None, device=device).task


def finish_run(plan: InferencePlan, rows: Sequence[ResultRow], seconds: float) -> InferenceReport:
    """Write the run's results table (when it did anything) and summarise it."""
    s = plan.job.settings
    fs, root = resolve(s.output, s.storage_options)
    all_rows = list(plan.rejected) + list(rows)
    path = to_url(fs, write_run_results(fs, root, plan.job.run_id, all_rows)) if all_rows else None
    failed = [r for r in all_rows if r.status != STATUS_OK]
    return InferenceReport(
        run_id=plan.job.run_id,
        output=to_url(fs, root),
        model_sha256=plan.job.model_sha256,
        total=plan.total,
        skipped=plan.skipped,
        ok=len(all_rows) - len(failed),
        failed=len(failed),
        failures=tuple((r.input, r.error or "") for r in failed),
        seconds=seconds,
        results_path=path,
    )


def run_plan(plan: InferencePlan, *, progress: Progress | None = None) -> InferenceReport:
    """Run every batch of ``plan`` in this process, one after the other (no Prefect)."""
    start = time.perf_counter()
    bar = (progress or NullProgress()).task("infer", total=plan.todo, unit="images")
    rows: list[ResultRow] = []
    for batch in plan.batches:
        rows += run_batch(plan.job, batch, on_result=lambda _row: bar.advance(1))
    report = finish_run(plan, rows, time.perf_counter() - start)
    bar.finish(f"{report.ok} ok, {report.failed} failed")
    return report
