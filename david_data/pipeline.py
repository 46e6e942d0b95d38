"""The pipeline: mirror parts, convert those that are verified, and (given a model)
evaluate it on the store.

Each step is its job's own engine (:mod:`david_data.jobs`); this module only chains them
(which parts go on to convert, whether to evaluate) and reports all three.
:func:`plan_pipeline` checks everything that can be checked before the mirror starts
(destination, store, model and its task, evaluation output) and gives each step its
options; the step plans when it runs (the mirror's HEADs, once). Where the steps run is
the caller's choice: :class:`LocalSteps` runs the engines in this process (the CLI's
default), and ``david_data/flows/pipeline.py`` runs each job's flow as a subflow; both
build the step's settings from the same options with the job's own builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol, TypeVar

from . import jobs
from .convert.plan import check_convert_settings, convert_settings
from .convert.report import ConversionReport
from .errors import ConfigError
from .fsutil import join, resolve, to_url
from .infer.evaluate import EvaluationReport
from .jobs import Job
from .mirror import MirrorReport, MirrorSettings
from .mirror.plan import check_destination
from .progress import NullProgress, Progress

R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """What a user asks for (``david-data pipeline``'s options, 1:1)."""

    mirror_dest: str
    store: str
    parts: str | int = "all"
    base_url: str | None = None
    jobs: int = 4
    segments: int = 4
    workers: str | int = 2
    profile: str | None = None
    model: str | None = None
    model_path: str | None = None
    task: str | None = None
    query: str | None = None
    evaluation_output: str | None = None
    device: str = "auto"
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PipelinePlan:
    """Each step's options, checked (convert's ``parts`` are set after the mirror)."""

    parts: str
    """The part selection as given ('all', '0-3,7', ...)."""
    mirror: Mapping[str, Any]
    """Options of the mirror job (:func:`david_data.jobs.mirror`)."""
    convert: Mapping[str, Any]
    evaluate: Mapping[str, Any] | None
    """Options of the evaluation (None: no model given)."""

    def describe(self) -> str:
        m, c = self.mirror, self.convert
        lines = [
            f"mirror parts {self.parts} from {m['base_url']} to {m['dest']}",
            f"then convert the verified parts into {c['store_url']}",
        ]
        if self.evaluate is not None:
            e = self.evaluate
            lines.append(
                f"then evaluate {e['model_path']} ({e['task']}) on it into {e['output']}"
            )
        return "\n".join(lines)


def plan_pipeline(settings: PipelineSettings) -> PipelinePlan:
    """Check every step's settings before anything runs (no request to the host: the
    mirror step plans); ConfigError/ModelError/... else."""
    options = dict(settings.storage_options)
    mirror = MirrorSettings.from_options(
        dest=settings.mirror_dest,
        parts=settings.parts,
        base_url=settings.base_url,
        storage_options=options,
        jobs=settings.jobs,
        segments=settings.segments,
    )
    check_destination(mirror)
    mirror_url = to_url(*resolve(mirror.dest, options))
    convert = check_convert_settings(
        convert_settings(
            mirror_url,
            settings.store,
            profile=settings.profile,
            workers=settings.workers,
            storage_options=options,
            source_options=options,
        )
    )
    return PipelinePlan(
        parts=str(settings.parts),
        mirror={
            "dest": mirror_url,
            "parts": settings.parts,
            "base_url": mirror.base_url,
            "jobs": mirror.jobs,
            "segments": mirror.segments,
            "storage_options": options,
        },
        convert={
            "source_url": convert.source_url,
            "store_url": convert.store_url,
            "profile": convert.profile,
            "workers": convert.workers,
            "storage_options": options,
            "source_options": options,
        },
        evaluate=_evaluation(settings, convert.store_url),
    )


def _evaluation(settings: PipelineSettings, store_url: str) -> dict[str, Any] | None:
    """The evaluation step's options: the model found and loaded once, its task known."""
    if settings.model is None and settings.model_path is None:
        given = [
            option
            for option, value in (
                ("--task", settings.task),
                ("--query", settings.query),
                ("--evaluation-output", settings.evaluation_output),
            )
            if value
        ]
        if given:
            raise ConfigError(
                f"{', '.join(given)} only apply to the evaluation step; add --model NAME or "
                "--model-path FILE to evaluate, or drop them"
            )
        return None
    from .infer._checks import check_model, check_writable
    from .infer.registry import resolve_model

    path, task = resolve_model(settings.model, settings.model_path, settings.task)
    task = check_model(path, task, device=settings.device, threads=None)
    output = settings.evaluation_output or join(
        store_url, "_evaluations", PurePosixPath(str(path)).stem
    )
    check_writable(output, dict(settings.storage_options))
    return {
        "store": store_url,
        "output": output,
        "model_path": str(path),
        "task": task,
        "query": settings.query,
        "device": settings.device,
        "storage_options": dict(settings.storage_options),
    }


@dataclass(frozen=True, kw_only=True)
class PipelineReport:
    """The three steps' reports (``None``: the step did not run)."""

    mirror: MirrorReport
    convert: ConversionReport | None
    evaluate: EvaluationReport | None

    @property
    def interrupted(self) -> bool:
        return any(r.interrupted for r in self._reports())

    @property
    def failure_count(self) -> int:
        return sum(r.failure_count for r in self._reports())

    def _reports(self) -> list[MirrorReport | ConversionReport | EvaluationReport]:
        return [r for r in (self.mirror, self.convert, self.evaluate) if r is not None]

    def summary(self) -> str:
        lines = [self.mirror.summary()]
        if self.convert is None:
            lines.append("convert: not run (" + self._why_not("no part was verified") + ")")
        else:
            lines.append(self.convert.summary())
        if self.evaluate is not None:
            lines.append(self.evaluate.summary())
        return "\n".join(lines)

    def markdown(self) -> str:
        sections = ["# SynthHuman pipeline", "", "## mirror", "", self.mirror.markdown()]
        sections += ["", "## convert", ""]
        sections.append(
            self.convert.markdown() if self.convert else self._why_not("no part was verified")
        )
        if self.evaluate is not None:
            sections += ["", "## evaluate", "", self.evaluate.markdown()]
        return "\n".join(sections)

    def _why_not(self, otherwise: str) -> str:
        return "interrupted" if self.mirror.interrupted else otherwise


class Steps(Protocol):
    """Where the pipeline's steps run: each step is a job and its options; it returns the
    job's report."""

    def run(self, job: Job[Any, Any, R], options: Mapping[str, Any]) -> R: ...


def run_pipeline(plan: PipelinePlan, steps: Steps) -> PipelineReport:
    """Mirror; convert the parts verified (fetched now or before); evaluate when a model
    was given and the conversion ran. An interrupted step ends the pipeline there."""
    mirrored = steps.run(jobs.mirror(), plan.mirror)
    verified = [o.name for o in mirrored.outcomes if o.status in ("ok", "intact", "skipped")]
    converted = None
    if verified and not mirrored.interrupted:
        converted = steps.run(jobs.convert(), {**plan.convert, "parts": verified})
    evaluated = None
    if plan.evaluate is not None and converted is not None and not converted.interrupted:
        evaluated = steps.run(jobs.evaluate(), plan.evaluate)
    return PipelineReport(mirror=mirrored, convert=converted, evaluate=evaluated)


class LocalSteps:
    """The steps' engines in this process, each on its job's executor (parts on threads,
    shards on processes), and with ``dask_address`` the units of the jobs that can use
    one on that Dask cluster."""

    def __init__(self, *, progress: Progress | None = None, dask_address: str | None = None):
        self.progress = progress or NullProgress()
        self.dask_address = dask_address

    def run(self, job: Job[Any, Any, R], options: Mapping[str, Any]) -> R:
        plan = job.plan(job.settings(**options))
        return job.run_here(plan, progress=self.progress, dask_address=self.dask_address)
