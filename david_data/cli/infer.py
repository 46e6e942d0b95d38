"""``david-data infer`` and ``david-data evaluate``: validate, plan, then run the engine
in this process (or as a flow run, or on a Dask cluster; see ``_run.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .. import jobs
from .._extras import require
from ..engine import EXIT_FAILURES, EXIT_OK
from ..errors import NoInputsError
from ._options import add_device_option, add_no_progress, add_run_options, add_storage_option
from ._run import job_options, run_job

logger = logging.getLogger(__name__)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (one of --model or --model-path)")
    group.add_argument(
        "--model",
        metavar="NAME",
        help="a released model from the cache, e.g. depth-base (see 'david-data models list')",
    )
    group.add_argument("--model-path", metavar="FILE", help="any DAViD-shaped ONNX file")
    group.add_argument(
        "--task",
        choices=("depth", "normal", "foreground", "multitask"),
        help="the task of --model-path (default: read from the model's outputs)",
    )
    add_device_option(group)
    parser.add_argument(
        "--batch-size",
        default=None,
        metavar="B",
        help="images per model call (default: 1 on the CPU, 4 on a GPU)",
    )
    add_storage_option(parser, "the input, output and store URLs")
    add_no_progress(parser)
    add_run_options(parser, dask=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    infer = subparsers.add_parser(
        "infer",
        help="run a DAViD model over an image collection (batched, resumable, distributed)",
        description=(
            "Run a DAViD model over images and write, for input REL/NAME.EXT, OUTPUT/REL/NAME.depth.exr "
            "(float32 relative depth, larger = nearer), NAME.normal.exr (float32 X,Y,Z unit normals) and "
            "NAME.foreground.png (16-bit soft mask), for the tasks the model has; --vis adds NAME.vis.png. "
            "A results table per run goes to OUTPUT/_runs/<run id>.parquet. Rerunning skips inputs whose "
            "outputs are complete for the same model and the same input (NAME.<model sha>.<input key>.done "
            "markers; a replaced input is done again), so a killed or scheduled run only does what is left. "
            "Bad inputs are recorded with their reason and the rest continue; the exit status is 1 when "
            "any input failed."
        ),
    )
    infer.add_argument(
        "input",
        nargs="?",
        metavar="INPUT",
        help="folder (searched recursively for images), file or glob, local or any fsspec URL, e.g. "
        "'az://container/photos/**/*.jpg' (quote globs); omit with --from-store",
    )
    infer.add_argument("output", metavar="OUTPUT", help="output folder, local or fsspec URL")
    infer.add_argument(
        "--from-store",
        dest="store",
        metavar="STORE",
        help="run over the samples of a converted SynthHuman store instead of INPUT",
    )
    infer.add_argument(
        "--query",
        metavar="SQL",
        help="with --from-store: select samples, a WHERE condition (\"scenario = 'face'\") or a full "
        "SELECT returning sample_id from table samples",
    )
    _add_model_options(infer)
    infer.add_argument(
        "--images-per-task",
        default=64,
        metavar="N",
        help="images per batch (a work unit and a results file; default: 64)",
    )
    infer.add_argument(
        "--workers",
        default=2,
        metavar="N",
        help="batches run at once in this process (default: 2); with --dask-address the "
        "cluster's threads decide",
    )
    infer.add_argument(
        "--vis", action="store_true", help="also write NAME.vis.png panels like the official demo"
    )
    infer.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would run (inputs to do vs done) and stop",
    )
    infer.set_defaults(func=handle_infer)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="score a model against a converted SynthHuman store's ground truth",
        description=(
            "Run a model over store samples and report the model cards' metrics per scenario and overall: "
            "foreground SAD/1000, MSE and trimap SAD/1000; depth RMSE (cm) and AbsRel after least-squares "
            "scale and shift on foreground pixels; normal mean and median angular error and the share "
            "within 11.25, 22.5 and 30 degrees. Writes per_sample.parquet, summary.csv and summary.json."
        ),
    )
    evaluate.add_argument("store", metavar="STORE", help="converted store, local or fsspec URL")
    _add_model_options(evaluate)
    evaluate.add_argument(
        "--query",
        metavar="SQL",
        help="select samples: a WHERE condition (\"scenario = 'face'\") or a SELECT returning sample_id",
    )
    evaluate.add_argument(
        "-o",
        "--output",
        default="evaluation",
        metavar="DIR",
        help="folder for the tables (default: ./evaluation)",
    )
    evaluate.add_argument(
        "--samples-per-task",
        default=64,
        metavar="N",
        help="samples per work unit (default: 64)",
    )
    evaluate.set_defaults(func=handle_evaluate)


def handle_infer(args: argparse.Namespace) -> int:
    job = jobs.infer()
    options = job_options(args, job.options())
    try:
        if args.dry_run:
            print(job.plan(job.settings(**options)).describe())
            return EXIT_OK
        require("infer", "david-data infer")
        return run_job(args, job, options, on_plan=_log_plan)
    except NoInputsError as exc:  # the job ran and found nothing to do: exit 1, not 2
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURES


def handle_evaluate(args: argparse.Namespace) -> int:
    job = jobs.evaluate()
    options = job_options(args, job.options())
    job.settings(**options)  # the plain values before the extra
    require("infer", "david-data evaluate")
    return run_job(args, job, options, on_plan=_log_plan)


def _log_plan(plan: Any) -> None:
    logger.info("%s", plan.describe().splitlines()[0])
