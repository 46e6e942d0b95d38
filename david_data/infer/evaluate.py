"""Score a model against SynthHuman ground truth, per scenario and overall.

::

    plan_evaluation(store, query, ...)  -> EvalJob + sample ids, cut into batches
    evaluate_batch(job, ids)            -> EvalBatch: per-sample rows + a mergeable Accumulator
    evaluate_store(...)                 -> Evaluation (all batches in this process)
    write_evaluation(evaluation, dir)   -> per_sample.parquet, summary.csv, summary.json

Each sample's ``rgb`` (stored RGB) is turned into BGR, run through the same pre-processing,
model and post-processing as ``infer``, and the outputs (at 512 x 384) are scored by
:mod:`david_data.infer.metrics` against the sample's alpha, depth and normals. The rules
of aggregation (means of per-sample values; normal angles pooled over pixels) are those of
:class:`~david_data.infer.metrics.Accumulator` and are written into the JSON.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import facts
from ..errors import ConfigError
from ..fsutil import atomic_write_bytes, join, resolve, to_url
from ..progress import NullProgress, Progress
from ._pipeline import run_pipeline
from .inputs import _open_store, _options_key, store_sample_ids
from .metrics import METRIC_NAMES, Accumulator, SampleMetrics, evaluate_sample

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EvalJob:
    """What every evaluation batch shares (plain, picklable data)."""

    store: str
    model_path: str
    task: str
    model_sha256: str
    device: str = "auto"
    batch_size: int = 4
    io_threads: int = 4
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in facts.MODEL_TASKS:
            raise ConfigError(
                f"unknown task {self.task!r}; expected one of {', '.join(facts.MODEL_TASKS)}"
            )


@dataclass(frozen=True, kw_only=True)
class EvalBatch:
    """One batch's outcome: a row per scored sample, the partial aggregate, failures."""

    rows: list[dict[str, Any]]
    accumulator: Accumulator
    failures: list[tuple[int, str]]


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

    def markdown(self) -> str:
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
    """What ``evaluate`` prints: the summary table, where the tables went, failures."""

    samples: int
    summary: list[dict[str, Any]]
    markdown: str
    paths: dict[str, str]
    failures: list[tuple[int, str]]
    seconds: float


def report_of(evaluation: Evaluation, paths: dict[str, str]) -> EvaluationReport:
    return EvaluationReport(
        samples=len(evaluation.rows),
        summary=evaluation.summary_rows(),
        markdown=evaluation.markdown(),
        paths=paths,
        failures=evaluation.failures,
        seconds=evaluation.seconds,
    )


def plan_evaluation(
    store: str,
    model_path: str,
    task: str,
    *,
    query: str | None = None,
    device: str = "auto",
    batch_size: int = 4,
    storage_options: dict[str, Any] | None = None,
) -> tuple[EvalJob, list[int]]:
    """The job description and the selected sample ids (all ok samples without ``query``)."""
    from .model import file_sha256

    job = EvalJob(
        store=store,
        model_path=model_path,
        task=task,
        model_sha256=file_sha256(model_path),
        device=device,
        batch_size=batch_size,
        storage_options=dict(storage_options or {}),
    )
    ids = store_sample_ids(_open_store(store, _options_key(job.storage_options)), query)
    if not ids:
        raise ConfigError(f"no samples selected in {store}" + (f" by {query!r}" if query else ""))
    return job, ids


def evaluate_batch(job: EvalJob, sample_ids: Sequence[int]) -> EvalBatch:
    """Run the model over some samples and score each (one Prefect task in the flow)."""
    from .model import load_model
    from .runtime import postprocess, preprocess

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
    ) -> SampleMetrics:
        info, truth = context
        outputs = postprocess(raw, info)
        return evaluate_sample(
            outputs,
            alpha=truth["alpha"],
            depth=truth["depth"],
            normal=truth["normal"],
            scenario=facts.scenario_of(sample_id),
            sample_id=sample_id,
        )

    failures: list[tuple[int, str]] = []

    def fail(sample_id: int, exc: BaseException, _seconds: float) -> None:
        logger.warning("sample %d: failed: %s", sample_id, exc)
        failures.append((sample_id, str(exc) or type(exc).__name__))

    scored = run_pipeline(
        list(sample_ids),
        prepare=prepare,
        run_model=model.run,
        finish=finish,
        fail=fail,
        batch_size=job.batch_size,
        threads=job.io_threads,
    )
    accumulator = Accumulator()
    rows = []
    for metrics in scored:
        if metrics is not None:
            accumulator.add(metrics)
            rows.append(metrics.row())
    return EvalBatch(rows=rows, accumulator=accumulator, failures=failures)


def combine(
    job: EvalJob, query: str | None, batches: Sequence[EvalBatch], seconds: float
) -> Evaluation:
    """Merge batch outcomes into one :class:`Evaluation`."""
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
    )


def chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    """``ids`` cut into lists of at most ``size``."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def evaluate_store(
    store: str,
    model_path: str,
    task: str,
    *,
    query: str | None = None,
    device: str = "auto",
    batch_size: int = 4,
    samples_per_batch: int = 64,
    storage_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate a model on a store's samples in this process (no Prefect)."""
    start = time.perf_counter()
    job, ids = plan_evaluation(
        store,
        model_path,
        task,
        query=query,
        device=device,
        batch_size=batch_size,
        storage_options=storage_options,
    )
    bar = (progress or NullProgress()).task("evaluate", total=len(ids), unit="samples")
    batches = []
    for part in chunks(ids, samples_per_batch):
        batches.append(evaluate_batch(job, part))
        bar.advance(len(part))
    evaluation = combine(job, query, batches, time.perf_counter() - start)
    bar.finish(f"{len(evaluation.rows)} scored, {len(evaluation.failures)} failed")
    return evaluation


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
