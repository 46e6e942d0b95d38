"""The pipeline: mirror parts, convert those that are verified, and (given a model)
evaluate it on the store.

Each step is its job's own engine; this module only chains them (which parts go on to
convert, whether to evaluate) and reports all three. :func:`plan_pipeline` checks
everything that can be checked before the mirror starts (destination, host, store, model
and its task, evaluation output). Where the steps run is the caller's choice:
:class:`LocalSteps` runs the engines in this process (the CLI's default), and
``flows/pipeline.py`` runs each job's flow as a subflow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

from .convert.plan import ConvertSettings, check_convert_settings, convert_settings
from .convert.report import ConversionReport
from .errors import ConfigError
from .fsutil import join
from .infer.evaluate import EvalSettings, EvaluationReport
from .mirror import MirrorPlan, MirrorReport, MirrorSettings, plan_mirror
from .progress import NullProgress, Progress


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
    """The checked settings of each step (convert's ``parts`` are set after the mirror)."""

    parts: str
    """The part selection as given ('all', '0-3,7', ...)."""
    mirror: MirrorPlan
    convert: ConvertSettings
    evaluate: EvalSettings | None

    def describe(self) -> str:
        lines = [self.mirror.render(), f"then convert the verified parts into {self.convert.store_url}"]
        if self.evaluate is not None:
            lines.append(
                f"then evaluate {self.evaluate.model_path} ({self.evaluate.task}) on it "
                f"into {self.evaluate.output}"
            )
        return "\n".join(lines)


def plan_pipeline(settings: PipelineSettings) -> PipelinePlan:
    """Check every step's settings before anything runs; ConfigError/ModelError/... else."""
    options = dict(settings.storage_options)
    mirror = plan_mirror(
        MirrorSettings.from_options(
            dest=settings.mirror_dest,
            parts=settings.parts,
            base_url=settings.base_url,
            storage_options=options,
            jobs=settings.jobs,
            segments=settings.segments,
        )
    )
    convert = check_convert_settings(
        convert_settings(
            mirror.settings.dest,
            settings.store,
            profile=settings.profile,
            workers=settings.workers,
            storage_options=options,
            source_options=options,
        )
    )
    return PipelinePlan(
        parts=str(settings.parts),
        mirror=mirror,
        convert=convert,
        evaluate=_evaluation(settings, convert),
    )


def _evaluation(settings: PipelineSettings, convert: ConvertSettings) -> EvalSettings | None:
    """The evaluation step's settings: the model found and loaded once, its task known."""
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
        convert.store_url, "_evaluations", PurePosixPath(str(path)).stem
    )
    check_writable(output, dict(settings.storage_options))
    return EvalSettings(
        store=convert.store_url,
        output=output,
        model_path=str(path),
        task=task,
        query=settings.query,
        device=settings.device,
        storage_options=dict(settings.storage_options),
    )


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
    """Where the pipeline's steps run: each takes its checked settings, returns its report."""

    def mirror(self, plan: PipelinePlan) -> MirrorReport: ...

    def convert(self, settings: ConvertSettings) -> ConversionReport: ...

    def evaluate(self, settings: EvalSettings) -> EvaluationReport: ...


def run_pipeline(plan: PipelinePlan, steps: Steps) -> PipelineReport:
    """Mirror; convert the parts verified (fetched now or before); evaluate when a model
    was given and the conversion ran. An interrupted step ends the pipeline there."""
    mirrored = steps.mirror(plan)
    verified = tuple(o.name for o in mirrored.outcomes if o.status in ("ok", "intact", "skipped"))
    converted = None
    if verified and not mirrored.interrupted:
        converted = steps.convert(dataclasses.replace(plan.convert, parts=verified))
    evaluated = None
    if plan.evaluate is not None and converted is not None and not converted.interrupted:
        evaluated = steps.evaluate(plan.evaluate)
    return PipelineReport(mirror=mirrored, convert=converted, evaluate=evaluated)


class LocalSteps:
    """The steps' engines in this process: parts on threads, shards on processes, and
    with ``dask_address`` shards and evaluation batches on that Dask cluster."""

    def __init__(self, *, progress: Progress | None = None, dask_address: str | None = None):
        self.progress = progress or NullProgress()
        self.dask_address = dask_address

    def mirror(self, plan: PipelinePlan) -> MirrorReport:
        from .engine import make_executor
        from .mirror import run_mirror

        with make_executor("threads", plan.mirror.settings.jobs) as executor:
            return run_mirror(plan.mirror, executor, progress=self.progress)

    def convert(self, settings: ConvertSettings) -> ConversionReport:
        from .convert.plan import plan_convert
        from .convert.run import run_convert
        from .engine import make_executor

        plan = plan_convert(settings)
        with make_executor("processes", settings.workers, dask_address=self.dask_address) as ex:
            return run_convert(plan, ex, progress=self.progress)

    def evaluate(self, settings: EvalSettings) -> EvaluationReport:
        from .engine import make_executor
        from .infer.evaluate import plan_evaluation, run_evaluation

        plan = plan_evaluation(settings)
        with make_executor("threads", 1, dask_address=self.dask_address) as ex:
            return run_evaluation(plan, ex, progress=self.progress)
