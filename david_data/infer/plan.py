"""Plan an inference run: check the model, list the inputs, drop those already done, cut
the rest into batches of images (plain data; ``--dry-run`` prints it, resume is "plan
again").

::

    InferSettings (what a user asks for) --plan_inference--> InferencePlan
        job: InferJob (model checked, paths absolute, run id)
        batches: ImageBatch... (the units' inputs, with the stale markers to delete)
        rejected: ResultRow... (inputs refused up front)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .._parse import parse_int
from ..errors import ConfigError
from ..facts import MODEL_TASKS
from ..fsutil import resolve, to_url
from ._checks import check_writable, checked_model, model_sha256
from .inputs import InputItem, InputSource, list_inputs
from .model import batch_model
from .outputs import output_stem
from .results import STATUS_FAILED, ResultRow, check_done, new_run_id, orphans_text
from .session import DEVICES, resolve_device

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
    batch_size: int | None = None
    """Images per model call (None: :func:`default_batch_size` for the device)."""
    images_per_task: int = 64
    """Images per batch (one work unit, one results file)."""
    workers: int = 2
    """Batches at once on this machine (a Dask cluster runs as many as it has threads)."""
    vis: bool = False
    """Also write ``NAME.vis.png`` panels."""
    io_threads: int = 4
    """Threads reading/decoding ahead of the model, and as many writing behind it."""
    model_threads: int | None = None
    """ONNX Runtime intra-op threads (None: chosen on each machine for the model's cost, see
    ``model.pipeline_threads``: fewer than the cores for a cheap model on the CPU)."""
    storage_options: dict[str, Any] = field(default_factory=dict)
    """fsspec options for the input, the output and the store."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "images_per_task", "workers", "io_threads"):
            if name == "batch_size" and self.batch_size is None:
                continue
            option = "--" + name.replace("_", "-")
            object.__setattr__(self, name, parse_int(option, getattr(self, name), minimum=1))
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
class ImageBatch:
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
    batch: ImageBatch

    @property
    def label(self) -> str:
        return self.batch.label


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
    batches: tuple[ImageBatch, ...]
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
            lines.append(f"  {orphans_text(self.orphaned)}")
        if self.rejected:
            lines.append(f"  rejected: {len(self.rejected)}")
            lines += [f"    {r.input}: {r.error}" for r in self.rejected[:20]]
        lines += [f"  {b.label}: {b.items[0].rel} ... {b.items[-1].rel}" for b in self.batches[:10]]
        if len(self.batches) > 10:
            lines.append(f"  ... {len(self.batches) - 10} more batch(es)")
        return "\n".join(lines)


def default_batch_size(device: str) -> int:
    """Images per model call when the user gives none: 4 on a GPU (it needs work per call
    to be busy), 1 on the CPU, where ONNX Runtime already spreads one image over every core
    and a larger call costs as much per image or more: measured on 2 cores with the tiny
    multi-task model (CPU ms per image, one intra-op thread), 13 at batch 1, 18 at batch 4
    (4 stacked 512 x 512 inputs and their activations no longer fit in cache); the batch
    path went from 0.72x to 1.21x a one-by-one loop (medians of 4 interleaved rounds)."""
    return 1 if resolve_device(device) == "cpu" else 4


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def plan_inference(settings: InferSettings, *, run_id: str | None = None) -> InferencePlan:
    """Check the model (once, here), list the inputs, drop those already done for this
    model, cut the rest into batches. Every path in the plan is absolute or a full URL."""
    from .registry import resolve_model

    path, task = resolve_model(settings.model, settings.model_path, settings.task)
    output = to_url(*resolve(settings.output, settings.storage_options))
    check_writable(output, settings.storage_options)
    model_path, task = checked_model(
        path, task, device=settings.device, threads=settings.model_threads
    )
    batch_model(model_path, task, settings.device, settings.model_threads)
    resolved = dataclasses.replace(
        settings,
        output=output,
        model=None,
        model_path=model_path,
        task=task,
        batch_size=settings.batch_size or default_batch_size(settings.device),
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
            rejected.append(
                result_row(job, item, item.path or item.rel, STATUS_FAILED, 0.0, -1, error=reason)
            )
            continue
        owners[stem] = item.rel
        if item.rel in check.done:
            skipped += 1
        else:
            todo.append(item)
    step = resolved.images_per_task
    batches = tuple(
        ImageBatch(
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


def result_row(
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
    """One input's row of the results table (``batch`` -1: rejected by the plan)."""
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
