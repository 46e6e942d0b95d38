"""``david-data models list|fetch`` and ``david-data predict``: quick commands, no Prefect."""

from __future__ import annotations

import argparse

from .._extras import require
from ..engine import EXIT_FAILURES, EXIT_OK
from ..progress import progress_for
from ._options import add_no_progress


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = subparsers.add_parser(
        "models",
        help="list and fetch the released DAViD ONNX models",
        description="List the released DAViD models and download them into the local cache "
        "(DAVID_DATA_CACHE_DIR or the user cache directory, under models/).",
    )
    sub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)

    ls = sub.add_parser(
        "list", help="show each model's task, size, MACs, URL and whether it is cached"
    )
    _add_location_options(ls)
    ls.set_defaults(func=handle_list)

    fetch = sub.add_parser(
        "fetch",
        help="download models into the cache (resumable, atomic)",
        description="Download released models by name (see 'david-data models list'). A model "
        "already cached is skipped; an interrupted download resumes when rerun.",
    )
    fetch.add_argument(
        "names", nargs="+", metavar="NAME", help="model names, e.g. depth-base multitask-large"
    )
    _add_location_options(fetch)
    fetch.add_argument(
        "--segments", type=int, default=4, help="parallel ranged connections per file (default 4)"
    )
    fetch.add_argument(
        "--force", action="store_true", help="download again even when the model is cached"
    )
    add_no_progress(fetch)
    fetch.set_defaults(func=handle_fetch)

    predict = subparsers.add_parser(
        "predict",
        help="run DAViD models on one image and write the demo's panels",
        description="The official demo, headless: run depth / normal / foreground models (or the "
        "multi-task model) on one image and write PNG panels. Given both individual models and "
        "a multi-task model, also writes their side-by-side comparison.",
    )
    predict.add_argument(
        "image", metavar="IMAGE", help="image file or fsspec URL (PNG, JPEG, TIFF, WebP, ...)"
    )
    predict.add_argument(
        "--model",
        nargs="+",
        default=[],
        metavar="NAME",
        help="released model name(s) from the cache, e.g. depth-base normal-base foreground-base",
    )
    predict.add_argument("--multitask-model", metavar="FILE", help="a multi-task ONNX file")
    predict.add_argument("--depth-model", metavar="FILE", help="a depth ONNX file")
    predict.add_argument("--foreground-model", metavar="FILE", help="a soft foreground ONNX file")
    predict.add_argument("--normal-model", metavar="FILE", help="a surface normal ONNX file")
    predict.add_argument(
        "-o", "--output", default=".", metavar="DIR", help="folder for the panels (default: .)"
    )
    predict.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda", "tensorrt"),
        help="execution device; a GPU that is not available is an error (default: auto)",
    )
    predict.add_argument(
        "--threads", type=int, default=None, help="CPU threads per model (default: all cores)"
    )
    predict.add_argument(
        "--dir", metavar="DIR", help="model cache folder for --model (default: the cache)"
    )
    predict.set_defaults(func=handle_predict)


def _add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR", help="model folder (default: <cache>/models)")
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="where the models are served (default: DAVID_DATA_MODELS_URL or the official host)",
    )


def handle_list(args: argparse.Namespace) -> int:
    from ..infer.registry import list_models

    entries = list_models(args.dir, args.base_url)
    rows = [("NAME", "TASK", "SIZE MB", "GMACS", "CACHED", "URL")]
    for e in entries:
        rows.append(
            (
                e.name,
                e.task,
                f"{e.size_mb:,.2f}",
                f"{e.gmacs:.1f}",
                "yes" if e.cached else "no",
                e.url,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i in (0, 1, 4) else cell.rjust(w) if i < 5 else cell
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    if entries:
        print(f"\ncache folder: {entries[0].path.parent}")
    return EXIT_OK


def handle_fetch(args: argparse.Namespace) -> int:
    from ..infer.registry import fetch

    with progress_for(not args.no_progress) as progress:
        results = fetch(
            args.names,
            args.dir,
            base_url=args.base_url,
            progress=progress,
            segments=args.segments,
            force=args.force,
        )
    for r in results:
        if r.status == "failed":
            print(f"{r.name}: FAILED: {r.error} (rerun to resume)")
        else:
            print(f"{r.name}: {r.status} {r.path} ({r.size:,} bytes)")
    return EXIT_FAILURES if any(r.status == "failed" for r in results) else EXIT_OK


def handle_predict(args: argparse.Namespace) -> int:
    from ..infer.predict import choose_models, predict_image

    require("infer", "david-data predict")
    models = choose_models(
        args.model,
        multitask_model=args.multitask_model,
        task_models={t: getattr(args, f"{t}_model") for t in ("depth", "foreground", "normal")},
        cache_dir=args.dir,
    )
    for url in predict_image(
        args.image, models, args.output, device=args.device, threads=args.threads
    ):
        print(url)
    return EXIT_OK
