"""``david-data infer`` and ``david-data evaluate``: validate, plan, then run the engine
in this process (or as a flow run, or on a Dask cluster; see ``_run.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .. import jobs
from .._extras import require
from ..engine import EXIT_FAILURES
from ..errors import ConfigError, NoInputsError
from ._options import add_device_option, add_no_progress, add_run_options, add_storage_option
from ._run import job_options, plan_or_run, run_job

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
    infer.add_argument(
        "output",
        nargs="?",
        metavar="OUTPUT",
        help="output folder, local or fsspec URL; omit it with --from-store to write the "
        "predictions into the store as a run (STORE/runs/<run>/)",
    )
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
    infer.add_argument(
        "--ids",
        metavar="IDS",
        help="with --from-store and no OUTPUT: sample ids and ranges, e.g. 0-99,120000 "
        "(with --query: the samples both select)",
    )
    infer.add_argument(
        "--run",
        metavar="NAME",
        help="with --from-store and no OUTPUT: the run to write (default: "
        "<model name>-<first 8 hex of its SHA-256>; a run of another model is never "
        "overwritten, rerunning one resumes it)",
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
            "Run a model over store samples (writing its predictions into the store as a run, "
            "resumably; --no-run: only read the store), or take a run's stored predictions "
            "(--run without a model), and report the model cards' metrics per scenario and overall: "
            "foreground SAD/1000, MSE and trimap SAD/1000; depth RMSE (cm) and AbsRel after least-squares "
            "scale and shift on foreground pixels; normal mean and median angular error and the share "
            "within 11.25, 22.5 and 30 degrees. Writes per_sample.parquet, summary.csv and summary.json, "
            "and the per-sample metrics of the run into the store: table 'metrics' of 'david-data query'."
        ),
    )
    evaluate.add_argument("store", metavar="STORE", help="converted store, local or fsspec URL")
    _add_model_options(evaluate)
    evaluate.add_argument(
        "--query",
        metavar="SQL",
        help="select samples: a WHERE condition (\"scenario = 'face'\") or a SELECT returning "
        "sample_id (tables samples and metrics)",
    )
    evaluate.add_argument(
        "--run",
        metavar="NAME",
        help="without a model: score this run's stored predictions; with one: the run its "
        "predictions go to (default <model name>-<sha256[:8]>)",
    )
    evaluate.add_argument(
        "--no-run",
        action="store_true",
        help="with a model: only write the tables, do not write a run and its metrics into "
        "the store (which is then only read)",
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
    if args.store is not None and args.output is None and args.input is not None:
        args.input, args.output = None, args.input  # 'infer --from-store STORE OUTPUT'
    if args.output is None:
        if args.store is None:
            raise ConfigError(
                "give an OUTPUT folder (or --from-store STORE without OUTPUT to write a run "
                "into the store)"
            )
        return _handle_infer_into_store(args)
    for flag, value in (("--run", args.run), ("--ids", args.ids)):
        if value is not None:
            raise ConfigError(
                f"{flag} is for a run written into the store: drop OUTPUT "
                f"('david-data infer --from-store STORE --model M {flag} ...'), or drop {flag}"
            )
    job = jobs.infer()
    options = job_options(args, job.options())
    try:
        if not args.dry_run:
            require("infer", "david-data infer")
        return plan_or_run(args, job, options, on_plan=_log_plan)
    except NoInputsError as exc:  # the job ran and found nothing to do: exit 1, not 2
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURES


def _handle_infer_into_store(args: argparse.Namespace) -> int:
    """``infer --from-store STORE`` without OUTPUT: predictions into a run of the store."""
    if args.vis:
        raise ConfigError("--vis draws panels into an OUTPUT folder; give one, or drop --vis")
    job = jobs.infer_run()
    options = job_options(args, job.options(), samples_per_task=args.images_per_task)
    require("infer", "david-data infer")
    return plan_or_run(args, job, options, on_plan=_log_plan)


def handle_evaluate(args: argparse.Namespace) -> int:
    if args.no_run and args.run is not None:
        raise ConfigError("--no-run writes no run: drop --run or --no-run")
    job = jobs.evaluate()
    options = job_options(args, job.options(), into_store=not args.no_run)
    job.settings(**options)  # the plain values before the extra
    require("infer", "david-data evaluate")
    return run_job(args, job, options, on_plan=_log_plan)


def _log_plan(plan: Any) -> None:
    logger.info("%s", plan.describe().splitlines()[0])
