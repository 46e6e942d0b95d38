"""Inference into a store's run: predictions beside the ground truth (``STORE/runs/<run>/``).

Plan, then run (one engine, see :mod:`david_data.engine`)::

    plan_run(settings)                -> RunPlan: model checked, run created (or checked:
                                         same model), samples selected, those the run
                                         already holds dropped, the rest cut into units of
                                         whole shards (one writer per shard)
    run_into_store(plan, executor)    -> RunReport
    predict_shards(unit)              -> ShardsResult (the work unit): each shard's samples
                                         through the model pipeline, the outputs encoded as
                                         they finish into a temporary file (memory stays
                                         flat), the shard committed (covered chunk last)

Resume is "plan again": a killed run keeps the shards it committed, and the next one
does the rest; a rerun with the same model and selection finds nothing to do. A model
file that changed has another SHA-256, hence another default run name: a new run, the
old one is kept (an explicit ``--run`` of the old name is refused, naming both models).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import mmap
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._parse import parse_int
from ..engine import Executor, stop_requested
from ..engine.report import INTERRUPTED_HINT, first_lines
from ..engine.run import run_units_by_sample
from ..errors import ConfigError
from ..fsutil import resolve, to_url
from ..progress import NullProgress, Progress
from ._checks import check_workers, check_writable, checked_model, model_sha256
from ._pipeline import ModelPipeline
from .inputs import _open_store, _options_key
from .plan import TASK_KINDS, default_batch_size
from .session import DEVICES

if TYPE_CHECKING:
    from ..store.runs import RunInfo

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a user asks for: ``infer --from-store STORE`` without OUTPUT (the CLI's options
    and the flow's parameters)."""

    store: str
    model: str | None = None
    model_path: str | None = None
    task: str | None = None
    run: str | None = None
    """Run name (default: ``<model name>-<first 8 hex of its SHA-256>``)."""
    query: str | None = None
    """SQL selecting samples (a WHERE condition, or a SELECT returning sample_id; it may
    join ``metrics``)."""
    ids: str | None = None
    """Sample ids and ranges, ``0-99,120000``."""
    device: str = "auto"
    batch_size: int | None = None
    samples_per_task: int = 64
    """Samples per work unit, rounded up to whole shards."""
    workers: int = 2
    io_threads: int = 4
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("batch_size", "samples_per_task", "workers", "io_threads"):
            if name == "batch_size" and self.batch_size is None:
                continue
            option = "--" + name.replace("_", "-")
            object.__setattr__(self, name, parse_int(option, getattr(self, name), minimum=1))
        if self.device not in DEVICES:
            raise ConfigError(
                f"unknown device {self.device!r}; expected one of {', '.join(DEVICES)}"
            )
        if self.run is not None:
            from ..store.runs import check_run_name

            check_run_name(self.run)


@dataclass(frozen=True, kw_only=True)
class RunJob:
    """What every unit shares (plain, picklable; paths absolute)."""

    store: str
    run: str
    model_path: str
    task: str
    model_sha256: str
    device: str = "auto"
    batch_size: int = 1
    io_threads: int = 4
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ShardsUnit:
    """One work unit: whole shards of the run, each with the sample ids it still needs."""

    job: RunJob
    index: int
    shards: tuple[tuple[int, tuple[int, ...]], ...]

    @property
    def samples(self) -> int:
        return sum(len(ids) for _, ids in self.shards)

    @property
    def label(self) -> str:
        first, last = self.shards[0][0], self.shards[-1][0]
        return f"shards {first}-{last} ({self.samples} samples)"


@dataclass(frozen=True, kw_only=True)
class ShardsResult:
    index: int
    written: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    not_run: int = 0


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """Everything an inference into a run will do, as plain data."""

    settings: RunSettings
    job: RunJob
    info: RunInfo
    """The run's description: written (or checked, and a new selection recorded) when
    the run starts; planning writes nothing."""
    selected: int
    already: int
    """Selected samples the run already holds."""
    units: tuple[ShardsUnit, ...]

    @property
    def todo(self) -> int:
        return sum(u.samples for u in self.units)

    def describe(self) -> str:
        s, j = self.settings, self.job
        where = "".join(
            f" {k} {v!r}" for k, v in (("--query", s.query), ("--ids", s.ids)) if v is not None
        )
        lines = [
            f"run {j.run} in {j.store}: {self.selected} sample(s) selected{where}",
            f"  model {j.model_path} ({j.task}, sha256 {j.model_sha256[:12]}), device {j.device}",
            f"  already in the run: {self.already}; to do: {self.todo} in {len(self.units)} "
            f"unit(s) (model batch {j.batch_size})",
        ]
        lines += [f"  {u.label}" for u in self.units[:10]]
        if len(self.units) > 10:
            lines.append(f"  ... {len(self.units) - 10} more unit(s)")
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """The outcome of an inference into a run (a :class:`david_data.engine.JobReport`)."""

    store: str
    run: str
    selected: int
    already: int
    written: int
    failures: list[tuple[int, str]]
    not_run: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def failure_count(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        left = f", {self.not_run} not run" if self.not_run else ""
        lines = [
            f"run {self.run} in {self.store}: {self.written} sample(s) predicted, "
            f"{self.already} already there, {len(self.failures)} failed{left} "
            f"in {self.seconds:.1f} s"
        ]
        lines += first_lines(
            self.failures, 50, lambda f: f"FAILED sample {f[0]}: {f[1]}", "... {} more failure(s)"
        )
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"# Run `{self.run}` in `{self.store}`", "", self.summary()]
        if self.interrupted:
            lines += ["", INTERRUPTED_HINT]
        return "\n".join(lines)


def default_run_name(model: str, sha256: str) -> str:
    """``<model name>-<first 8 hex of the SHA-256>``: a file stem or registry name made a
    valid run name (lower case; other characters become ``-``)."""
    stem = model.rsplit("/", 1)[-1]
    if stem.endswith(".onnx"):
        stem = stem[: -len(".onnx")]
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:55] or "model"
    return f"{stem}-{sha256[:8]}"


def select_ids(store: Any, query: str | None, ids: str | None) -> list[int]:
    """The converted samples ``query`` and ``ids`` select (both: those in both), ascending."""
    from ..facts import parse_sample_ids
    from .inputs import store_sample_ids

    chosen = np.asarray(store_sample_ids(store, query), dtype=np.int64)
    if ids is not None:
        wanted = np.concatenate(
            [np.arange(lo, hi + 1, dtype=np.int64) for lo, hi in parse_sample_ids(ids)]
        )
        chosen = chosen[np.isin(chosen, wanted)]
    return [int(i) for i in chosen]


def plan_run(settings: RunSettings) -> RunPlan:
    """Check the model, create the run (or check it is this model's), select the samples,
    drop those the run holds, cut the rest into units of whole shards."""
    from ..store import open_store
    from ..store.runs import RunInfo, check_run
    from .registry import resolve_model

    path, task = resolve_model(settings.model, settings.model_path, settings.task)
    store_url = to_url(*resolve(settings.store, settings.storage_options))
    options = dict(settings.storage_options)
    store = open_store(store_url, options or None)  # fresh: --query may read new metrics
    ids = select_ids(store, settings.query, settings.ids)
    if not ids:
        raise ConfigError(
            f"no samples selected in {store_url}"
            + "".join(
                f" by {k} {v!r}"
                for k, v in (("--query", settings.query), ("--ids", settings.ids))
                if v
            )
            + "; check the selection (try it with 'david-data query STORE')"
        )
    try:
        check_writable(store_url, options, store=True)
    except ConfigError as exc:
        raise ConfigError(
            f"cannot write a run into store {store_url} ({exc}); infer into an OUTPUT folder "
            "instead, or evaluate with --no-run (it only reads the store)"
        ) from exc
    model_path, task = checked_model(path, task, device=settings.device, threads=None)
    sha = model_sha256(model_path)
    model_name = settings.model or os.path.basename(model_path)
    name = settings.run or default_run_name(model_name, sha)
    info = RunInfo.now(
        name,
        model=model_name,
        model_sha256=sha,
        tasks=TASK_KINDS[task],
        query=settings.query,
        ids=settings.ids,
    )
    exists = check_run(store.layout, info) is not None  # a run of another model: refused here
    resolved = dataclasses.replace(
        settings,
        store=store_url,
        model_path=model_path,
        task=task,
        run=name,
        batch_size=settings.batch_size or default_batch_size(settings.device),
    )
    job = RunJob(
        store=store_url,
        run=name,
        model_path=model_path,
        task=task,
        model_sha256=sha,
        device=settings.device,
        batch_size=resolved.batch_size,  # type: ignore[arg-type]  # resolved above
        io_threads=settings.io_threads,
        storage_options=options,
    )
    held = store.run_view(name).covered(ids) if exists else np.zeros(len(ids), dtype=bool)
    todo = [i for i, h in zip(ids, held, strict=True) if not h]
    units = _cut(job, todo, store.layout.shard_size, resolved.samples_per_task)
    return RunPlan(
        settings=resolved,
        job=job,
        info=info,
        selected=len(ids),
        already=int(held.sum()),
        units=units,
    )


def _cut(job: RunJob, ids: list[int], shard_size: int, per_unit: int) -> tuple[ShardsUnit, ...]:
    """Units of whole shards, each with at least ``per_unit`` samples (but the last)."""
    by_shard: dict[int, list[int]] = {}
    for sid in ids:
        by_shard.setdefault(sid // shard_size, []).append(sid)
    units: list[ShardsUnit] = []
    current: list[tuple[int, tuple[int, ...]]] = []
    for shard in sorted(by_shard):
        current.append((shard, tuple(by_shard[shard])))
        if sum(len(i) for _, i in current) >= per_unit:
            units.append(ShardsUnit(job=job, index=len(units), shards=tuple(current)))
            current = []
    if current:
        units.append(ShardsUnit(job=job, index=len(units), shards=tuple(current)))
    return tuple(units)


def predict_shards(
    unit: ShardsUnit, on_sample: Callable[[int], None] | None = None
) -> ShardsResult:
    """The work unit: for each shard, run its samples through the model (read ahead,
    outputs encoded behind it), then commit the shard (see the module docstring). A sample
    that fails is left uncovered and named; a stop request ends the unit after committing
    what finished."""
    from ..format.layout import open_layout
    from ..store.runs import open_run, write_shard_chunks
    from .model import load_model
    from .runtime import postprocess, preprocess

    job = unit.job
    model = load_model(job.model_path, job.task, device=job.device)
    sha = model_sha256(job.model_path)
    if sha != job.model_sha256:
        raise ConfigError(
            f"model file {job.model_path} differs from the one the run was planned with "
            f"(sha256 {sha[:12]}, planned {job.model_sha256[:12]}): it changed, or this worker "
            "has another file at that path; give every worker the same file and run again"
        )
    store = _open_store(job.store, _options_key(job.storage_options))
    layout = open_run(open_layout(job.store, job.storage_options or None), job.run)
    codecs = layout.codecs

    def prepare(sample_id: int) -> tuple[np.ndarray, Any]:
        rgb = store.read_batch([sample_id], fields=("rgb",))["rgb"][0]
        chw, info = preprocess(np.ascontiguousarray(np.asarray(rgb)[..., ::-1]))
        return chw, info

    spools: list[_Spool] = []  # the shard being predicted

    def finish(
        sample_id: int, raw: dict[str, np.ndarray], info: Any, _seconds: float
    ) -> tuple[int, str | None]:
        outputs = postprocess(raw, info)
        spools[-1].add(sample_id, {f: codecs[f].encode(outputs[f]) for f in layout.fields})
        return sample_id, None

    def fail(sample_id: int, exc: BaseException, _seconds: float) -> tuple[int, str | None]:
        logger.warning("sample %d: failed: %s", sample_id, exc)
        return sample_id, str(exc) or type(exc).__name__

    def _predict_shard(ids: tuple[int, ...], spool: _Spool) -> list[tuple[int, str | None] | None]:
        spools[:] = [spool]
        return ModelPipeline(
            prepare=prepare,
            run_model=model.run,
            finish=finish,
            fail=fail,
            batch_size=job.batch_size,
            threads=job.io_threads,
            on_result=(lambda r: on_sample(r[0])) if on_sample else None,
            should_stop=stop_requested,
        ).run(list(ids))

    written = not_run = 0
    failures: list[tuple[int, str]] = []
    for position, (shard, ids) in enumerate(unit.shards):
        if stop_requested():
            not_run += sum(len(i) for _, i in unit.shards[position:])
            break
        with _Spool(layout.fields) as spool:
            done = _predict_shard(ids, spool)
            for outcome in done:
                if outcome is None:
                    not_run += 1
                elif outcome[1] is not None:
                    failures.append((outcome[0], outcome[1]))
            if spool.count:
                with spool.chunks() as encoded:
                    write_shard_chunks(layout, shard, encoded)
                    del encoded  # the views go before the mapping closes
                written += spool.count
    logger.info(
        "%s: %d predicted, %d failed%s -> run %s",
        unit.label,
        written,
        len(failures),
        f", {not_run} left (stopped)" if not_run else "",
        job.run,
    )
    return ShardsResult(index=unit.index, written=written, failures=failures, not_run=not_run)


class _Spool:
    """One shard's encoded chunks, kept in an anonymous temporary file rather than in
    memory (a shard of multi-task predictions is ~100 x 2-4 MB): appended as outputs are
    finished (from the pipeline's threads), read back through ``mmap`` (no copy) when the
    shard is committed."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        self._lock = threading.Lock()
        self._where: dict[str, dict[int, tuple[int, int]]] = {f: {} for f in fields}
        self._size = 0

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    @property
    def count(self) -> int:
        return len(next(iter(self._where.values())))

    def add(self, sample_id: int, chunks: dict[str, bytes]) -> None:
        with self._lock:
            for f, data in chunks.items():
                self._file.write(data)
                self._where[f][sample_id] = (self._size, len(data))
                self._size += len(data)

    @contextlib.contextmanager
    def chunks(self) -> Iterator[dict[str, dict[int, memoryview]]]:
        """``field -> sample id -> chunk``, views of the file valid inside the block."""
        self._file.flush()
        mapped = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(mapped)
        try:
            yield {
                f: {sid: view[o : o + n] for sid, (o, n) in where.items()}
                for f, where in self._where.items()
            }
        finally:
            view.release()
            with contextlib.suppress(BufferError):  # a view kept alive by a traceback
                mapped.close()


def _failed_unit(unit: ShardsUnit, exc: BaseException) -> ShardsResult:
    reason = f"the unit could not run: {str(exc) or type(exc).__name__}"
    return ShardsResult(
        index=unit.index, failures=[(i, reason) for _, ids in unit.shards for i in ids]
    )


def run_into_store(
    plan: RunPlan, executor: Executor, *, progress: Progress | None = None
) -> RunReport:
    """Run every unit of ``plan`` on ``executor`` and report."""
    from ..store.runs import create_run

    start = time.perf_counter()
    job = plan.job
    create_run(job.store, plan.info, job.storage_options or None)
    results: list[ShardsResult] = []
    interrupted = False
    left = 0
    if plan.units:
        check_workers(executor, job.model_path, job.model_sha256, [job.store], job.storage_options)
        logger.info("%s on %s", plan.describe().splitlines()[0], executor.description)
        bar = (progress or NullProgress()).task("infer", total=plan.todo, unit="samples")
        outcome = run_units_by_sample(
            executor,
            predict_shards,
            plan.units,
            bar=bar,
            samples=lambda r: r.written + len(r.failures),
            label=lambda u: u.label,
            on_error=_failed_unit,
        )
        results = outcome.results
        interrupted = outcome.interrupted
        left = sum(u.samples for u in outcome.not_run) + sum(r.not_run for r in results)
        bar.finish("interrupted" if interrupted else "done")
    return RunReport(
        store=job.store,
        run=job.run,
        selected=plan.selected,
        already=plan.already,
        written=sum(r.written for r in results),
        failures=sorted(f for r in results for f in r.failures),
        not_run=left,
        interrupted=interrupted,
        seconds=time.perf_counter() - start,
    )
