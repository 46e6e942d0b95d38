"""``david-data pipeline`` as a flow: mirror, then convert, then (optionally) evaluate,
each step its job's flow run as a subflow, so the Prefect UI shows the chain as one run.
The chaining is the library's (:mod:`david_data.pipeline`); parameters mirror the CLI."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.types import SecretDict

from david_data.convert.plan import ConvertSettings
from david_data.convert.report import ConversionReport
from david_data.infer.evaluate import EvalSettings, EvaluationReport
from david_data.mirror import MirrorReport
from david_data.pipeline import (
    PipelinePlan,
    PipelineReport,
    PipelineSettings,
    plan_pipeline,
    run_pipeline,
)

from ._executor import publish, report_of_state, stops_cleanly
from .convert import convert_flow
from .evaluate import evaluate_flow
from .mirror import mirror_flow


def _secret(options: dict[str, Any] | None) -> SecretDict | None:
    return SecretDict(options) if options else None


class SubflowSteps:
    """Each step a subflow run of its job's flow; its report also when it ended Failed."""

    def __init__(self, *, dask_address: str | None, progress: bool) -> None:
        self.dask_address = dask_address
        self.progress = progress

    def mirror(self, plan: PipelinePlan) -> MirrorReport:
        s = plan.mirror.settings
        state = mirror_flow(
            dest=s.dest,
            parts=plan.parts,
            base_url=s.base_url,
            jobs=s.jobs,
            segments=s.segments,
            storage_options=_secret(s.storage_options),
            progress=self.progress,
            return_state=True,
        )
        return report_of_state(state)

    def convert(self, settings: ConvertSettings) -> ConversionReport:
        state = convert_flow(
            source_url=settings.source_url,
            store_url=settings.store_url,
            parts=list(settings.parts or ()),
            profile=settings.profile,
            workers=settings.workers,
            dask_address=self.dask_address,
            storage_options=_secret(settings.storage_options),
            source_options=_secret(settings.source_options),
            return_state=True,
        )
        return report_of_state(state)

    def evaluate(self, settings: EvalSettings) -> EvaluationReport:
        state = evaluate_flow(
            store=settings.store,
            output=settings.output,
            model_path=settings.model_path,
            task=settings.task,
            query=settings.query,
            device=settings.device,
            dask_address=self.dask_address,
            storage_options=_secret(settings.storage_options),
            return_state=True,
        )
        return report_of_state(state)


@flow(name="pipeline", log_prints=True)
@stops_cleanly
def pipeline_flow(
    mirror_dest: str,
    store: str,
    parts: str | int = "all",
    base_url: str | None = None,
    jobs: int = 4,
    segments: int = 4,
    workers: str | int = 2,
    profile: str | None = None,
    model: str | None = None,
    model_path: str | None = None,
    task: str | None = None,
    query: str | None = None,
    evaluation_output: str | None = None,
    device: str = "auto",
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
    progress: bool = True,
) -> PipelineReport:
    """Mirror ``parts`` to ``mirror_dest``, convert the verified ones into ``store``, and
    evaluate the model (``model`` or ``model_path``) on the store when one is given."""
    plan = plan_pipeline(
        PipelineSettings(
            mirror_dest=mirror_dest,
            store=store,
            parts=parts,
            base_url=base_url,
            jobs=jobs,
            segments=segments,
            workers=workers,
            profile=profile,
            model=model,
            model_path=model_path,
            task=task,
            query=query,
            evaluation_output=evaluation_output,
            device=device,
            storage_options=storage_options.get_secret_value() if storage_options else {},
        )
    )
    print(plan.describe())
    report = run_pipeline(plan, SubflowSteps(dask_address=dask_address, progress=progress))
    return publish(report, key="pipeline", description="mirror → convert → evaluate")
