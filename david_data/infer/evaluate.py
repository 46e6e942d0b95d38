"""Score a model against SynthHuman ground truth, per scenario and overall.

Plan, then run (one engine, see :mod:`david_data.engine`)::

    plan_evaluation(settings)                  -> EvaluationPlan: model checked, sample ids
                                                  selected and cut into units
    run_evaluation(plan, executor, progress=)  -> EvaluationReport; writes per_sample.parquet,
                                                  summary.csv and summary.json
    evaluate_batch(unit)                       -> EvalBatch: per-sample rows + a mergeable
                                                  Accumulator (the work unit)

Each sample's ``rgb`` (stored RGB) is turned into BGR, run through the same pre-processing,
model and post-processing as ``infer``, and the outputs (at 512 x 384) are scored by
:mod:`david_data.infer.metrics` against the sample's alpha, depth and normals. The rules
of aggregation (means of per-sample values; normal angles pooled over pixels) are those of
:class:`~david_data.infer.metrics.Accumulator` and are written into the JSON. Batches are
merged in sample order, so the tables do not depend on where the units ran.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import facts
from .._parse import parse_int
from ..engine import Executor, stop_requested
from ..engine.report import INTERRUPTED_HINT, first_lines
from ..engine.run import run_units_by_sample
from ..errors import ConfigError
from ..fsutil import atomic_write_bytes, join, resolve, to_url
from ..progress import NullProgress, Progress
from ._checks import check_workers, check_writable, checked_model, model_sha256
from ._pipeline import ModelPipeline
from .inputs import _open_store, _options_key, store_sample_ids
from .into_run import RunPlan, run_into_store
from .metrics import METRIC_NAMES, Accumulator, SampleMetrics, evaluate_sample
from .plan import default_batch_size
from .session import DEVICES

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """What a user asks for (the CLI's options and the flow's parameters, 1:1)."""

    store: str
    """A converted SynthHuman store, local or fsspec URL."""
    output: str = "evaluation"
    """Folder for the tables."""
    model: str | None = None
    model_path: str | None = None
    task: str | None = None
    query: str | None = None
    """SQL selecting samples (a WHERE condition or a SELECT returning sample_id)."""
    device: str = "auto"
    batch_size: int | None = None
    """Images per model call (None: ``default_batch_size`` for the device, see plan.py)."""
    samples_per_task: int = 64
    """Samples per work unit."""
    io_threads: int = 4
    storage_options: dict[str, Any] = field(default_factory=dict)
    run: str | None = None
    """Without a model: score this run's stored predictions. With one: the name of the run
    its predictions go to (default ``<model>-<sha256[:8]>``)."""
    into_store: bool = True
    """With a model: write its predictions as a run and the metrics into the store (else
    only the tables, the store is only read)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "samples_per_task", "io_threads"):
            if name == "batch_size" and self.batch_size is None:
                continue
            option = "--" + name.replace("_", "-")
            object.__setattr__(self, name, parse_int(option, getattr(self, name), minimum=1))
        if self.task is not None and self.task not in facts.MODEL_TASKS:
            raise ConfigError(
                f"unknown task {self.task!r}; expected one of {', '.join(facts.MODEL_TASKS)}"
            )
        if self.device not in DEVICES:
            raise ConfigError(
                f"unknown device {self.device!r}; expected one of {', '.join(DEVICES)}"
            )


@dataclass(frozen=True, kw_only=True)
class EvalJob:
    """What every evaluation batch shares (plain, picklable data; paths absolute)."""

    store: str
    model_path: str
    task: str
    model_sha256: str
    device: str = "auto"
    batch_size: int = 4
    io_threads: int = 4
    storage_options: dict[str, Any] = field(default_factory=dict)
    run: str | None = None
    """Score this run's stored predictions (and write the metrics into the store)."""


@dataclass(frozen=True, kw_only=True)
class EvalUnit:
    """One work unit: some sample ids and the job (pickles; runs anywhere)."""

    job: EvalJob
    index: int
    sample_ids: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"samples-{self.index:04d} ({len(self.sample_ids)} samples)"


@dataclass(frozen=True, kw_only=True)
class EvalBatch:
    """One unit's outcome: a row per scored sample, the partial aggregate, failures."""

    rows: list[dict[str, Any]]
    accumulator: Accumulator
    failures: list[tuple[int, str]]
    not_run: int = 0
    """Samples left because of a stop request."""


@dataclass(frozen=True, kw_only=True)
class EvaluationPlan:
    """Everything a run will do, as plain data."""

    settings: EvalSettings
    """The user's settings with ``store``, ``output`` and ``model_path`` absolute."""
    job: EvalJob
    units: tuple[EvalUnit, ...]
    infer: RunPlan | None = None
    """With a model and ``into_store``: the inference into the run, done first."""

    @property
    def samples(self) -> int:
        return sum(len(u.sample_ids) for u in self.units)

    def describe(self) -> str:
        s, j = self.settings, self.job
        lines = [
            f"evaluate {j.model_path} ({j.task}, sha256 {j.model_sha256[:12]}) on "
            f"{self.samples} sample(s) of {j.store}" + (f" where {s.query}" if s.query else ""),
            f"  {len(self.units)} unit(s) of up to {s.samples_per_task} samples "
            f"(model batch {s.batch_size}); tables into {s.output}",
        ]
        if j.run is not None:
            lines.append(f"  predictions of run {j.run}; per-sample metrics into the store")
        if self.infer is not None:
            lines.append(
                f"  first inference into run {j.run}: {self.infer.already} sample(s) there, "
                f"{self.infer.todo} to do"
            )
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """A whole evaluation: per-sample rows, per-scenario and overall summary, failures."""

    store: str
    query: str | None
    model_path: str
    task: str
    model_sha256: str
    rows: list[dict[str, Any]]
    accumulator: Accumulator
    failures: list[tuple[int, str]]
    seconds: float
    run: str | None = None
    """The run whose predictions were scored (its metrics are in the store)."""

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per scenario and one for ``all``: samples and each metric."""
        return self.accumulator.rows()

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "query": self.query,
            "model": {"path": self.model_path, "task": self.task, "sha256": self.model_sha256},
            "samples": len(self.rows),
            "failed": [{"sample_id": i, "error": e} for i, e in self.failures],
            "seconds": self.seconds,
            **self.accumulator.to_dict(),
        }

    def table(self) -> str:
        """The summary as a markdown table (metrics that were not measured are left out)."""
        rows = self.summary_rows()
        names = [m for m in METRIC_NAMES if any(r[m] is not None for r in rows)]
        lines = [
            "| scenario | samples | " + " | ".join(names) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
        ]
        for r in rows:
            cells = ["" if r[m] is None else f"{r[m]:.4g}" for m in names]
            lines.append(f"| {r['scenario']} | {r['samples']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class EvaluationReport:
    """The outcome of an evaluation (implements :class:`david_data.engine.JobReport`)."""

    evaluation: Evaluation
    paths: dict[str, str]
    """Where the tables went (none when the run was interrupted)."""
    not_run: int = 0
    interrupted: bool = False

    @property
    def samples(self) -> int:
        return len(self.evaluation.rows)

    @property
    def failures(self) -> list[tuple[int, str]]:
        return self.evaluation.failures

    @property
    def failure_count(self) -> int:
        return len(self.evaluation.failures)

    def summary(self) -> str:
        """What the CLI prints: the metrics table, where the tables went, failures."""
        e = self.evaluation
        left = f", {self.not_run} not run" if self.not_run else ""
        lines = [
            e.table(),
            f"{self.samples} sample(s) scored, {len(e.failures)} failed{left} in {e.seconds:.1f} s",
        ]
        lines += [f"{key}: {path}" for key, path in self.paths.items()]
        if e.run is not None and self.samples:
            lines.append(f"metrics of run {e.run}: table 'metrics' of 'david-data query {e.store}'")
        if self.interrupted:
            lines.append("interrupted: no tables written")
        lines += first_lines(
            e.failures,
            50,
            lambda f: f"FAILED sample {f[0]}: {f[1]}",
            "... {} more failure(s) in summary.json",
        )
        return "\n".join(lines)

    def markdown(self) -> str:
        """What a flow publishes as its artifact."""
        e = self.evaluation
        lines = [
            f"# Evaluation of `{e.model_path}` ({e.task}, sha256 `{e.model_sha256[:12]}`)",
            "",
            f"{self.samples} sample(s) of {e.store}"
            + (f" where `{e.query}`" if e.query else "")
            + f", {len(e.failures)} failed, {e.seconds:.1f} s",
            "",
            e.table(),
        ]
        if self.paths:
            lines += ["", *[f"- {key}: `{path}`" for key, path in self.paths.items()]]
        if self.interrupted:
            lines += ["", INTERRUPTED_HINT]
        return "\n".join(lines)


def plan_evaluation(settings: EvalSettings) -> EvaluationPlan:
    """Select the samples, check the output and the model (once, here), cut the samples
    into units. Every path in the plan is absolute or a full URL. With ``run`` and no
    model: score that run's predictions; with a model and ``into_store``: infer into a run
    first (resumable), then score the stored predictions, writing metrics into the store."""
    from .registry import resolve_model

    if settings.model is None and settings.model_path is None:
        if settings.run is None:
            raise ConfigError(
                "give --model NAME or --model-path FILE (a model to run and score), or --run "
                "NAME (a run of the store to score)"
            )
        return _plan_stored(settings)
    if settings.into_store:
        return _plan_with_run(settings)
    path, task = resolve_model(settings.model, settings.model_path, settings.task)
    store = to_url(*resolve(settings.store, settings.storage_options))
    options = dict(settings.storage_options)
    from ..store import open_store

    # a fresh store object: the query may read metrics written since this process opened it
    ids = store_sample_ids(open_store(store, options or None), settings.query)
    if not ids:
        raise ConfigError(
            f"no samples selected in {store}"
            + (f" by {settings.query!r}" if settings.query else "")
            + "; check --query (try it with 'david-data query STORE')"
        )
    output = to_url(*resolve(settings.output, options))
    check_writable(output, options)
    model_path, task = checked_model(path, task, device=settings.device, threads=None)
    resolved = dataclasses.replace(
        settings,
        store=store,
        output=output,
        model=None,
        model_path=model_path,
        task=task,
        batch_size=settings.batch_size or default_batch_size(settings.device),
    )
    job = EvalJob(
        store=store,
        model_path=model_path,
        task=task,
        model_sha256=model_sha256(model_path),
        device=settings.device,
        batch_size=resolved.batch_size,  # type: ignore[arg-type]  # resolved above
        io_threads=resolved.io_threads,
        storage_options=options,
    )
    step = resolved.samples_per_task
    units = tuple(
        EvalUnit(job=job, index=i // step, sample_ids=tuple(ids[i : i + step]))
        for i in range(0, len(ids), step)
    )
    return EvaluationPlan(settings=resolved, job=job, units=units)


def _plan_stored(settings: EvalSettings) -> EvaluationPlan:
    """Score run ``settings.run``: the selected samples it holds, in units of whole shards
    (each unit writes its shards' metrics)."""
    from ..store import open_store

    assert settings.run is not None
    store_url = to_url(*resolve(settings.store, settings.storage_options))
    options = dict(settings.storage_options)
    store = open_store(store_url, options or None)  # fresh: --query may read new metrics
    info = store.run(settings.run)
    held = store.covered(settings.run)
    ids = (
        held
        if settings.query is None
        else np.intersect1d(
            np.asarray(store_sample_ids(store, settings.query), dtype=np.int64), held
        )
    )
    if not ids.size:
        raise ConfigError(
            f"run {settings.run} in {store_url} holds no selected sample"
            + (f" (--query {settings.query!r})" if settings.query else "")
            + "; write predictions first: 'david-data infer --from-store STORE --model M'"
        )
    output = to_url(*resolve(settings.output, options))
    check_writable(output, options)
    check_writable(store_url, options, store=True)
    task = "multitask" if len(info.tasks) > 1 else info.tasks[0]
    resolved = dataclasses.replace(
        settings, store=store_url, output=output, task=task, batch_size=settings.batch_size or 1
    )
    job = EvalJob(
        store=store_url,
        model_path=info.model,
        task=task,
        model_sha256=info.model_sha256,
        io_threads=resolved.io_threads,
        storage_options=options,
        run=info.name,
    )
    units = _shard_units(job, [int(i) for i in ids], store.layout.shard_size, settings)
    return EvaluationPlan(settings=resolved, job=job, units=units)


def _plan_with_run(settings: EvalSettings) -> EvaluationPlan:
    """Infer into a run (what it lacks of the selection), then score the stored predictions."""
    from ..store import open_store
    from .into_run import RunSettings, plan_run

    infer = plan_run(
        RunSettings(
            store=settings.store,
            model=settings.model,
            model_path=settings.model_path,
            task=settings.task,
            run=settings.run,
            query=settings.query,
            device=settings.device,
            batch_size=settings.batch_size,
            samples_per_task=settings.samples_per_task,
            io_threads=settings.io_threads,
            storage_options=settings.storage_options,
        )
    )
    j = infer.job
    output = to_url(*resolve(settings.output, j.storage_options))
    check_writable(output, j.storage_options)
    store = open_store(j.store, j.storage_options or None)
    ids = store_sample_ids(store, settings.query)
    resolved = dataclasses.replace(
        settings,
        store=j.store,
        output=output,
        model=None,
        model_path=j.model_path,
        task=j.task,
        run=j.run,
        batch_size=j.batch_size,
    )
    job = EvalJob(
        store=j.store,
        model_path=j.model_path,
        task=j.task,
        model_sha256=j.model_sha256,
        device=j.device,
        batch_size=j.batch_size,
        io_threads=j.io_threads,
        storage_options=j.storage_options,
        run=j.run,
    )
    units = _shard_units(job, ids, store.layout.shard_size, settings)
    return EvaluationPlan(settings=resolved, job=job, units=units, infer=infer)


def _shard_units(
    job: EvalJob, ids: Sequence[int], shard_size: int, settings: EvalSettings
) -> tuple[EvalUnit, ...]:
    """Units of whole shards (at least ``samples_per_task`` samples but the last): each
    unit is the only writer of its shards' metrics."""
    units: list[EvalUnit] = []
    current: list[int] = []
    for i, sid in enumerate(ids):
        current.append(sid)
        last_of_shard = i + 1 == len(ids) or ids[i + 1] // shard_size != sid // shard_size
        if last_of_shard and len(current) >= settings.samples_per_task:
            units.append(EvalUnit(job=job, index=len(units), sample_ids=tuple(current)))
            current = []
    if current:
        units.append(EvalUnit(job=job, index=len(units), sample_ids=tuple(current)))
    return tuple(units)


def _score_stored(unit: EvalUnit, on_sample: Callable[[Any], None] | None) -> EvalBatch:
    """Score a run's stored predictions of the unit's samples; write their metrics into
    the store (one Parquet piece per shard, atomic)."""
    from ..store.runs import write_metrics

    job = unit.job
    assert job.run is not None
    store = _open_store(job.store, _options_key(job.storage_options))
    view = store.run_view(job.run)
    accumulator = Accumulator()
    rows: list[dict[str, Any]] = []
    failures: list[tuple[int, str]] = []
    not_run = 0
    for position, sid in enumerate(unit.sample_ids):
        if stop_requested():
            not_run = len(unit.sample_ids) - position
            break
        try:
            held = view.covered_shard(sid // view.layout.shard_size, cached=False)
            if not held[sid % view.layout.shard_size]:
                raise ConfigError(f"run {job.run} does not hold sample {sid}")
            predicted, _ = view.read([sid])
            truth = store.read_batch([sid], fields=("alpha", "depth", "normal"))
            metrics = evaluate_sample(
                {f: a[0] for f, a in predicted.items()},
                alpha=truth["alpha"][0],
                depth=truth["depth"][0],
                normal=truth["normal"][0],
                scenario=facts.scenario_of(sid),
                sample_id=sid,
            )
        except Exception as exc:  # one sample's failure, recorded with its reason
            logger.warning("sample %d: failed: %s", sid, exc)
            failures.append((sid, str(exc) or type(exc).__name__))
        else:
            accumulator.add(metrics)
            rows.append(metrics.row())
        if on_sample is not None:
            on_sample(sid)
    if rows:
        write_metrics(job.store, job.run, pa.Table.from_pylist(rows), job.storage_options or None)
    return EvalBatch(rows=rows, accumulator=accumulator, failures=failures, not_run=not_run)


def evaluate_batch(unit: EvalUnit, on_sample: Callable[[Any], None] | None = None) -> EvalBatch:
    """The work unit: run the model over some samples and score each (the model is loaded
    once per process), or, for a job with a run, score the run's stored predictions and
    write the metrics into the store. ``on_sample`` (in the caller's process only) hears
    of each sample as it finishes. Stops between samples on a stop request."""
    from .model import load_model
    from .runtime import postprocess, preprocess

    if unit.job.run is not None:
        return _score_stored(unit, on_sample)
    job = unit.job
    model = load_model(job.model_path, job.task, device=job.device)
    store = _open_store(job.store, _options_key(job.storage_options))

    def prepare(sample_id: int) -> tuple[np.ndarray, Any]:
        sample = store.sample(sample_id)
        bgr = np.ascontiguousarray(np.asarray(sample["rgb"])[..., ::-1])
        chw, info = preprocess(bgr)
        truth = {k: np.asarray(sample[k]) for k in ("alpha", "depth", "normal")}
        return chw, (info, truth)

    def finish(
        sample_id: int, raw: dict[str, np.ndarray], context: Any, _seconds: float
    ) -> tuple[int, SampleMetrics | None, str | None]:
        info, truth = context
        outputs = postprocess(raw, info)
        metrics = evaluate_sample(
            outputs,
            alpha=truth["alpha"],
            depth=truth["depth"],
            normal=truth["normal"],
            scenario=facts.scenario_of(sample_id),
            sample_id=sample_id,
        )
        return sample_id, metrics, None

    def fail(
        sample_id: int, exc: BaseException, _seconds: float
    ) -> tuple[int, SampleMetrics | None, str | None]:
        logger.warning("sample %d: failed: %s", sample_id, exc)
        return sample_id, None, str(exc) or type(exc).__name__

    scored = ModelPipeline(
        prepare=prepare,
        run_model=model.run,
        finish=finish,
        fail=fail,
        batch_size=job.batch_size,
        threads=job.io_threads,
        on_result=on_sample,
        should_stop=stop_requested,
    ).run(list(unit.sample_ids))
    accumulator = Accumulator()
    rows: list[dict[str, Any]] = []
    failures: list[tuple[int, str]] = []
    for outcome in scored:
        if outcome is None:
            continue
        sample_id, metrics, error = outcome
        if metrics is not None:
            accumulator.add(metrics)
            rows.append(metrics.row())
        else:
            failures.append((sample_id, error or ""))
    return EvalBatch(
        rows=rows,
        accumulator=accumulator,
        failures=failures,
        not_run=sum(1 for o in scored if o is None),
    )


def _failed_unit(unit: EvalUnit, exc: BaseException) -> EvalBatch:
    reason = f"the batch could not run: {str(exc) or type(exc).__name__}"
    return EvalBatch(
        rows=[], accumulator=Accumulator(), failures=[(i, reason) for i in unit.sample_ids]
    )


def combine(
    job: EvalJob, query: str | None, batches: Sequence[EvalBatch], seconds: float
) -> Evaluation:
    """Merge batch outcomes (in unit order) into one :class:`Evaluation`."""
    accumulator = Accumulator()
    rows: list[dict[str, Any]] = []
    failures: list[tuple[int, str]] = []
    for b in batches:
        accumulator.merge(b.accumulator)
        rows += b.rows
        failures += b.failures
    return Evaluation(
        store=job.store,
        query=query,
        model_path=job.model_path,
        task=job.task,
        model_sha256=job.model_sha256,
        rows=sorted(rows, key=lambda r: r["sample_id"]),
        accumulator=accumulator,
        failures=sorted(failures),
        seconds=seconds,
        run=job.run,
    )


def run_evaluation(
    plan: EvaluationPlan, executor: Executor, *, progress: Progress | None = None
) -> EvaluationReport:
    """Run every unit of ``plan`` on ``executor``, merge, write the tables, report."""
    start = time.perf_counter()
    job = plan.job
    if plan.infer is not None:
        inferred = run_into_store(plan.infer, executor, progress=progress)
        if inferred.interrupted:
            evaluation = combine(job, plan.settings.query, [], time.perf_counter() - start)
            return EvaluationReport(
                evaluation=evaluation, paths={}, not_run=plan.samples, interrupted=True
            )
    elif job.run is None:
        check_workers(executor, job.model_path, job.model_sha256, [job.store], job.storage_options)
    logger.info("%s on %s", plan.describe().splitlines()[0], executor.description)
    bar = (progress or NullProgress()).task("evaluate", total=plan.samples, unit="samples")
    outcome = run_units_by_sample(
        executor,
        evaluate_batch,
        plan.units,
        bar=bar,
        samples=lambda b: len(b.rows) + len(b.failures),
        label=lambda u: u.label,
        on_error=_failed_unit,
    )
    left = sum(len(u.sample_ids) for u in outcome.not_run) + sum(b.not_run for b in outcome.results)
    evaluation = combine(job, plan.settings.query, outcome.results, time.perf_counter() - start)
    paths = {}
    if not outcome.interrupted:
        paths = write_evaluation(evaluation, plan.settings.output, job.storage_options)
    bar.finish("interrupted" if outcome.interrupted else "done")
    return EvaluationReport(
        evaluation=evaluation, paths=paths, not_run=left, interrupted=outcome.interrupted
    )


def write_evaluation(
    evaluation: Evaluation, out_dir: str, storage_options: dict[str, Any] | None = None
) -> dict[str, str]:
    """Write ``per_sample.parquet``, ``summary.csv`` and ``summary.json`` (atomic); returns URLs."""
    fs, root = resolve(out_dir, storage_options)
    per_sample = pa.Table.from_pylist(
        evaluation.rows,
        schema=pa.schema(
            [("sample_id", pa.int64()), ("scenario", pa.string())]
            + [(m, pa.float64()) for m in METRIC_NAMES]
        ),
    )
    sink = pa.BufferOutputStream()
    pq.write_table(per_sample, sink, compression="zstd")
    text = io.StringIO()
    summary = evaluation.summary_rows()
    writer = csv.DictWriter(
        text, fieldnames=list(summary[0]) if summary else ["scenario"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(summary)
    files = {
        "per_sample": ("per_sample.parquet", sink.getvalue().to_pybytes()),
        "summary_csv": ("summary.csv", text.getvalue().encode()),
        "summary_json": ("summary.json", json.dumps(evaluation.to_dict(), indent=2).encode()),
    }
    paths = {}
    for key, (name, data) in files.items():
        path = join(root, name)
        atomic_write_bytes(fs, path, data)
        paths[key] = to_url(fs, path)
    return paths
