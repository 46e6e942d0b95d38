"""``david-data pipeline``: mirror → convert → evaluate in one command, in this process
or as one flow run with a subflow per step (see ``_run.py``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .._extras import require
from ._options import add_device_option, add_job_options
from ._run import job_options, report_and_exit, run_flow, wants_flow_run

if TYPE_CHECKING:
    from ..pipeline import PipelineReport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pipeline = subparsers.add_parser(
        "pipeline",
        help="mirror, then convert, then (optionally) evaluate, in one command",
        description=(
            "Mirror the selected parts to DEST_MIRROR, convert the verified ones into STORE, and, "
            "when a model is given, evaluate it on the store. Every option is checked before "
            "the mirror starts. Runs in this process (no Prefect) unless --prefect or a "
            "configured Prefect server asks for a flow run (one run, three subflows)."
        ),
    )
    pipeline.add_argument("mirror_dest", metavar="DEST_MIRROR", help="mirror folder or fsspec URL")
    pipeline.add_argument("store", metavar="STORE", help="store folder or fsspec URL")
    pipeline.add_argument(
        "--parts", default="all", help="'all', 'sample' or e.g. '0-3,7' (default: all)"
    )
    pipeline.add_argument(
        "--base-url", help="where the parts are served (default: the official host)"
    )
    pipeline.add_argument(
        "--jobs", type=int, default=4, help="parts downloaded at once (default: 4)"
    )
    pipeline.add_argument(
        "--segments", type=int, default=4, help="connections per part (default: 4)"
    )
    pipeline.add_argument(
        "--workers", type=int, default=2, help="conversion processes (default: 2)"
    )
    pipeline.add_argument(
        "--profile",
        choices=("fast", "compact"),
        default=None,
        help="store codecs of a new store (default: fast; an existing store keeps its own)",
    )
    pipeline.add_argument(
        "--model",
        help="released model to evaluate, e.g. depth-base (fetch it first: david-data models fetch NAME)",
    )
    pipeline.add_argument("--model-path", help="any ONNX file to evaluate instead of --model")
    pipeline.add_argument(
        "--task",
        choices=("depth", "normal", "foreground", "multitask"),
        help="task of --model-path (default: read from the model's outputs)",
    )
    pipeline.add_argument(
        "--query", help="evaluate only the samples this SQL selects from table 'samples'"
    )
    pipeline.add_argument(
        "--evaluation-output", help="where the metrics go (default: STORE/_evaluations/MODEL)"
    )
    add_device_option(pipeline)
    add_job_options(pipeline, "the mirror and the store", dask=True)
    pipeline.set_defaults(func=run_pipeline_command)


def run_pipeline_command(args: argparse.Namespace) -> int:
    from ..jobs import options_of
    from ..pipeline import LocalSteps, PipelineSettings, plan_pipeline, run_pipeline
    from ..progress import progress_for

    options = job_options(args, options_of(PipelineSettings))
    settings = PipelineSettings(**options)
    if wants_flow_run(args):  # the flow run plans (once)
        _check_run_extras(args, evaluate=bool(settings.model or settings.model_path))
        return report_and_exit(lambda: run_flow("pipeline", options, args))
    plan = plan_pipeline(settings)
    _check_run_extras(args, evaluate=plan.evaluate is not None)

    def run_here() -> PipelineReport:
        with progress_for(not args.no_progress) as bars:
            return run_pipeline(plan, LocalSteps(progress=bars, dask_address=args.dask_address))

    return report_and_exit(run_here)


def _check_run_extras(args: argparse.Namespace, *, evaluate: bool) -> None:
    if evaluate:
        require("infer", "david-data pipeline with a model")
    if args.dask_address:
        check_dask_cluster(args.dask_address)


def check_dask_cluster(address: str) -> None:
    """ConfigError now, before the mirror, when the cluster cannot be reached."""
    from ..engine import DaskExecutor

    DaskExecutor(address).close()
