"""``david-data pipeline`` as a flow: mirror, then convert, then (optionally) evaluate,
each step its job's flow run as a subflow, so the Prefect UI shows the chain as one run.
The chaining is the library's (:mod:`david_data.pipeline`); parameters mirror the CLI."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from prefect import flow
from prefect.types import SecretDict

from david_data.jobs import Job
from david_data.pipeline import PipelineReport, PipelineSettings, plan_pipeline, run_pipeline

from ._executor import flow_parameters, job_settings, publish, report_of_state, stops_cleanly

R = TypeVar("R")


class SubflowSteps:
    """Each step a subflow run of its job's flow, called with the step's options (the
    ones :class:`~david_data.pipeline.LocalSteps` builds the settings from); its report
    also when it ended Failed."""

    def __init__(self, *, dask_address: str | None, progress: bool) -> None:
        self.dask_address = dask_address
        self.progress = progress

    def run(self, job: Job[Any, Any, R], options: Mapping[str, Any]) -> R:
        subflow = getattr(importlib.import_module(f"{__package__}.{job.name}"), f"{job.name}_flow")
        parameters = flow_parameters(
            subflow, dict(options), dask_address=self.dask_address, progress=self.progress
        )
        report: R = report_of_state(subflow(**parameters, return_state=True))
        return report


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
    plan = plan_pipeline(job_settings(PipelineSettings, locals()))
    print(plan.describe())
    report = run_pipeline(plan, SubflowSteps(dask_address=dask_address, progress=progress))
    return publish(report, key="pipeline", description="mirror → convert → evaluate")
