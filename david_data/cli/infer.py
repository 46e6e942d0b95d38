"""``david-data infer`` and ``david-data evaluate``: validate, plan, then run the engine
in this process (or as a flow run, or on a Dask cluster; see ``_run.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .._extras import require
from ..errors import ConfigError, NoInputsError
from ..fsutil import parse_storage_options
from ._options import add_no_progress, add_run_options, add_storage_option

logger = logging.getLogger(__name__)
EXIT_FAILURES = 1
DEVICES = ("auto", "cpu", "cuda", "tensorrt")


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
    group.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="execution device; asking for a GPU that is not available is an error (default: auto)",
    )
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


def _infer_settings(args: argparse.Namespace) -> Any:
    from ..infer.batch import InferSettings

    return InferSettings(
        output=args.output,
        input=args.input,
        store=args.from_store,
        query=args.query,
        model=args.model,
        model_path=args.model_path,
        task=args.task,
        device=args.device,
        batch_size=args.batch_size,
        images_per_task=args.images_per_task,
        workers=args.workers,
        vis=args.vis,
        storage_options=parse_storage_options(args.storage_option),
    )


def handle_infer(args: argparse.Namespace) -> int:
    from ..engine import make_executor
    from ..infer.batch import plan_inference, run_inference
    from ..progress import progress_for
    from ._run import run_job

    if args.from_store is not None and args.output is None and args.input is not None:
        args.input, args.output = None, args.input  # 'infer --from-store STORE OUTPUT'
    if args.output is None:
        if args.from_store is None:
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
    settings = _infer_settings(args)
    try:
        plan = plan_inference(settings)
    except NoInputsError as exc:  # the job ran and found nothing to do: exit 1, not 2
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURES
    if args.dry_run:
        print(plan.describe())
        return 0
    require("infer", "david-data infer")
    logger.info("%s", plan.describe().splitlines()[0])

    def run_local() -> Any:
        with (
            progress_for(not args.no_progress) as bars,
            make_executor("threads", settings.workers, dask_address=args.dask_address) as ex,
        ):
            return run_inference(plan, ex, progress=bars)

    s = plan.settings
    return run_job(
        args,
        run_local=run_local,
        flow="infer",
        flow_params={
            "output": s.output,
            "input": plan.job.source.url,
            "store": plan.job.source.store,
            "query": s.query,
            "model_path": s.model_path,
            "task": s.task,
            "device": s.device,
            "batch_size": s.batch_size,
            "images_per_task": s.images_per_task,
            "workers": s.workers,
            "vis": s.vis,
            "dask_address": args.dask_address,
            "storage_options": s.storage_options or None,
        },
    )


def _handle_infer_into_store(args: argparse.Namespace) -> int:
    """``infer --from-store STORE`` without OUTPUT: predictions into a run of the store."""
    from ..engine import make_executor
    from ..infer.into_run import RunSettings, plan_run, run_into_store
    from ..progress import progress_for
    from ._run import run_job

    if args.vis:
        raise ConfigError("--vis draws panels into an OUTPUT folder; give one, or drop --vis")
    settings = RunSettings(
        store=args.from_store,
        model=args.model,
        model_path=args.model_path,
        task=args.task,
        run=args.run,
        query=args.query,
        ids=args.ids,
        device=args.device,
        batch_size=args.batch_size,
        samples_per_task=args.images_per_task,
        workers=args.workers,
        storage_options=parse_storage_options(args.storage_option),
    )
    require("infer", "david-data infer")
    plan = plan_run(settings)
    if args.dry_run:
        print(plan.describe())
        return 0
    logger.info("%s", plan.describe().splitlines()[0])

    def run_local() -> Any:
        with (
            progress_for(not args.no_progress) as bars,
            make_executor("threads", settings.workers, dask_address=args.dask_address) as ex,
        ):
            return run_into_store(plan, ex, progress=bars)

    s, j = plan.settings, plan.job
    return run_job(
        args,
        run_local=run_local,
        flow="infer",
        flow_params={
            "output": None,
            "store": j.store,
            "run": j.run,
            "query": s.query,
            "ids": s.ids,
            "model_path": j.model_path,
            "task": j.task,
            "device": s.device,
            "batch_size": s.batch_size,
            "images_per_task": s.samples_per_task,
            "workers": s.workers,
            "dask_address": args.dask_address,
            "storage_options": s.storage_options or None,
        },
    )


def handle_evaluate(args: argparse.Namespace) -> int:
    from ..engine import make_executor
    from ..infer.evaluate import EvalSettings, plan_evaluation, run_evaluation
    from ..progress import progress_for
    from ._run import run_job

    settings = EvalSettings(
        store=args.store,
        output=args.output,
        model=args.model,
        model_path=args.model_path,
        task=args.task,
        query=args.query,
        device=args.device,
        batch_size=args.batch_size,
        samples_per_task=args.samples_per_task,
        storage_options=parse_storage_options(args.storage_option),
        run=args.run,
        into_store=not args.no_run,
    )
    if args.no_run and args.run is not None:
        raise ConfigError("--no-run writes no run: drop --run or --no-run")
    plan = plan_evaluation(settings)
    require("infer", "david-data evaluate")
    logger.info("%s", plan.describe().splitlines()[0])

    def run_local() -> Any:
        with (
            progress_for(not args.no_progress) as bars,
            make_executor("threads", 1, dask_address=args.dask_address) as ex,
        ):
            return run_evaluation(plan, ex, progress=bars)

    s = plan.settings
    return run_job(
        args,
        run_local=run_local,
        flow="evaluate",
        flow_params={
            "store": s.store,
            "output": s.output,
            "model_path": s.model_path,
            "task": s.task,
            "query": s.query,
            "device": s.device,
            "batch_size": s.batch_size,
            "samples_per_task": s.samples_per_task,
            "dask_address": args.dask_address,
            "storage_options": s.storage_options or None,
            "run": s.run,
            "into_store": s.into_store,
        },
    )
