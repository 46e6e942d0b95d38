"""``david-data infer`` and ``david-data evaluate``: long jobs, run as Prefect flows."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from ..fsutil import parse_storage_options
from ._options import add_no_progress, add_storage_option
from ._prefect import prepare_prefect

EXIT_OK, EXIT_FAILURES = 0, 1
DEVICES = ("auto", "cpu", "cuda", "tensorrt")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
        type=_positive,
        default=4,
        metavar="B",
        help="images per model call (default: 4)",
    )
    add_storage_option(parser, "the input, output and store URLs")
    add_no_progress(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    infer = subparsers.add_parser(
        "infer",
        help="run a DAViD model over an image collection (batched, resumable, distributed)",
        description=(
            "Run a DAViD model over images and write, for input REL/NAME.EXT, OUTPUT/REL/NAME.depth.exr "
            "(float32 relative depth, larger = nearer), NAME.normal.exr (float32 X,Y,Z unit normals) and "
            "NAME.foreground.png (16-bit soft mask), for the tasks the model has; --vis adds NAME.vis.png. "
            "A results table per run goes to OUTPUT/_runs/<run id>.parquet. Rerunning skips inputs whose "
            "outputs are complete for the same model, so a killed or scheduled run only does what is left. "
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
        type=_positive,
        default=64,
        metavar="N",
        help="images per batch task (a Prefect task and a results file; default: 64)",
    )
    infer.add_argument(
        "--workers",
        type=_positive,
        default=2,
        metavar="N",
        help="batch tasks run at once in this process (default: 2); ignored with --dask-address",
    )
    infer.add_argument(
        "--dask-address",
        metavar="ADDR",
        help="run the batch tasks on an existing Dask cluster, e.g. tcp://scheduler:8786; every worker "
        "loads the model once and must see the model file at the same path",
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
        type=_positive,
        default=64,
        metavar="N",
        help="samples per Prefect task (default: 64)",
    )
    evaluate.set_defaults(func=handle_evaluate)


def handle_infer(args: argparse.Namespace) -> int:
    if args.from_store and args.input:
        raise ConfigError(
            "give either INPUT or --from-store STORE, not both: with --from-store the only path is OUTPUT"
        )
    if not args.from_store and not args.input:
        raise ConfigError("missing INPUT: give a folder, file, glob or URL, or --from-store STORE")
    if args.query and not args.from_store:
        raise ConfigError("--query selects store samples: add --from-store STORE")
    options = parse_storage_options(args.storage_option)
    if args.dry_run:
        return _dry_run(args, options)
    prepare_prefect()
    from flows.infer import run_infer

    report = run_infer(
        output=args.output,
        model_name=args.model,
        model_path=args.model_path,
        task=args.task,
        input=args.input,
        store=args.from_store,
        query=args.query,
        batch_size=args.batch_size,
        images_per_task=args.images_per_task,
        workers=args.workers,
        dask_address=args.dask_address,
        device=args.device,
        vis=args.vis,
        progress=not args.no_progress,
        storage_options=options,
    )
    print(report.summary())
    return EXIT_FAILURES if report.failed else EXIT_OK


def _dry_run(args: argparse.Namespace, options: dict[str, str]) -> int:
    """Plan without Prefect and without loading the model (unless its task must be read)."""
    from ..infer.batch import InferSettings, plan_inference, resolve_task
    from ..infer.inputs import InputSource
    from ..infer.registry import resolve_model

    path, task = resolve_model(args.model, args.model_path, args.task)
    settings = InferSettings(
        output=args.output,
        model_path=str(path),
        task=resolve_task(str(path), task, device=args.device),
        device=args.device,
        batch_size=args.batch_size,
        images_per_task=args.images_per_task,
        vis=args.vis,
        storage_options=options,
    )
    source = InputSource(
        url=args.input, store=args.from_store, query=args.query, storage_options=options
    )
    print(plan_inference(source, settings).describe())
    return EXIT_OK


def handle_evaluate(args: argparse.Namespace) -> int:
    prepare_prefect()
    from flows.evaluate import run_evaluate

    result = run_evaluate(
        store=args.store,
        model_name=args.model,
        model_path=args.model_path,
        task=args.task,
        query=args.query,
        output=args.output,
        batch_size=args.batch_size,
        samples_per_task=args.samples_per_task,
        device=args.device,
        progress=not args.no_progress,
        storage_options=parse_storage_options(args.storage_option),
    )
    print(result.markdown)
    for key, path in result.paths.items():
        print(f"{key}: {path}")
    if result.failures:
        print(f"{len(result.failures)} sample(s) failed:", file=sys.stderr)
        for sample_id, reason in result.failures[:50]:
            print(f"  {sample_id}: {reason}", file=sys.stderr)
    return EXIT_FAILURES if result.failures else EXIT_OK
