"""``david-data pipeline`` (mirror → convert → evaluate in one command) and ``david-data
demo`` (the whole chain on an embedded, offline default)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._extras import require
from ..demo import DEMO_PARTS, DEMO_SAMPLES_PER_PART
from ..errors import ConfigError
from ..facts import SAMPLES_PER_PART
from ..fsutil import parse_storage_options
from ._options import add_no_progress, add_run_options, add_storage_option

if TYPE_CHECKING:
    from ..engine import JobReport

EXIT_OK, EXIT_FAILURES = 0, 1


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
    add_no_progress(pipeline)
    add_storage_option(pipeline, "the mirror and the store")
    add_run_options(pipeline, dask=True)
    pipeline.set_defaults(func=run_pipeline_command)

    demo = subparsers.add_parser(
        "demo",
        help="run the whole chain offline on a local SynthHuman-like host, with pictures",
        description=(
            "Serves synthetic SynthHuman parts from a loopback host, mirrors them, converts them, "
            "queries the metadata, runs a stand-in ONNX model over the store's images, evaluates it, "
            "and writes pictures. Needs no internet; takes a few minutes on 2 cores."
        ),
    )
    demo.add_argument(
        "--workdir", default="demo-output", help="where everything goes (default: ./demo-output)"
    )
    demo.add_argument(
        "--parts",
        default=DEMO_PARTS,
        help=f"parts to serve and mirror, one per scenario by default (default: {DEMO_PARTS})",
    )
    demo.add_argument(
        "--samples-per-part",
        type=int,
        default=DEMO_SAMPLES_PER_PART,
        help=f"samples in each part (default: {DEMO_SAMPLES_PER_PART})",
    )
    add_no_progress(demo)
    demo.set_defaults(func=run_demo_command)


def run_pipeline_command(args: argparse.Namespace) -> int:
    from ..pipeline import PipelineSettings, plan_pipeline
    from ._run import run_job

    options = parse_storage_options(args.storage_option)
    plan = plan_pipeline(
        PipelineSettings(
            mirror_dest=args.mirror_dest,
            store=args.store,
            parts=args.parts,
            base_url=args.base_url,
            jobs=args.jobs,
            segments=args.segments,
            workers=args.workers,
            profile=args.profile,
            model=args.model,
            model_path=args.model_path,
            task=args.task,
            query=args.query,
            evaluation_output=args.evaluation_output,
            storage_options=options,
        )
    )
    if plan.evaluate:
        require("infer", "david-data pipeline with a model")
    if args.dask_address:
        check_dask_cluster(args.dask_address)

    def run_local() -> JobReport:
        from ..pipeline import LocalSteps, run_pipeline
        from ..progress import progress_for

        with progress_for(not args.no_progress) as bars:
            return run_pipeline(plan, LocalSteps(progress=bars, dask_address=args.dask_address))

    evaluate = plan.evaluate
    return run_job(
        args,
        run_local=run_local,
        flow="pipeline",
        flow_params={
            "mirror_dest": plan.mirror.settings.dest,
            "store": plan.convert.store_url,
            "parts": plan.parts,
            "base_url": plan.mirror.settings.base_url,
            "jobs": plan.mirror.settings.jobs,
            "segments": plan.mirror.settings.segments,
            "workers": plan.convert.workers,
            "profile": args.profile,
            "model_path": evaluate.model_path if evaluate else None,
            "task": evaluate.task if evaluate else None,
            "query": evaluate.query if evaluate else None,
            "evaluation_output": evaluate.output if evaluate else None,
            "dask_address": args.dask_address,
            "storage_options": options or None,
            "progress": not args.no_progress,
        },
    )


def check_dask_cluster(address: str) -> None:
    """ConfigError now, before the mirror, when the cluster cannot be reached."""
    from ..engine import DaskExecutor

    DaskExecutor(address).close()


def run_demo_command(args: argparse.Namespace) -> int:
    from .. import demo
    from ..engine import exit_code
    from ..progress import progress_for
    from ..synth.host import LocalHost

    require("infer", "david-data demo (it evaluates a stand-in ONNX model)")
    started = time.monotonic()
    work = Path(args.workdir).resolve()
    parts = demo.demo_part_names(args.parts)
    if not 1 <= args.samples_per_part <= SAMPLES_PER_PART:
        raise ConfigError(
            f"--samples-per-part must be 1 ... {SAMPLES_PER_PART}, got {args.samples_per_part}"
        )
    if work.exists() and not work.is_dir():
        raise ConfigError(f"--workdir {work} is a file; give a folder (it is created if missing)")
    print(f"david-data demo → {work}\n")

    print(
        f"[1/6] writing {len(parts)} synthetic SynthHuman parts ({args.samples_per_part} samples each) for the local host"
    )
    with progress_for(not args.no_progress) as bars:
        host_dir = demo.prepare_source(work, parts, args.samples_per_part, bars)
    model = demo.build_stand_in_model(work)

    from ..pipeline import LocalSteps, PipelineSettings, plan_pipeline, run_pipeline

    mirror_dir, store_dir = work / "mirror", work / "store"
    with LocalHost(host_dir) as host:
        print(f"[2/6] local SynthHuman host at {host.base_url}: mirror → convert → evaluate")
        plan = plan_pipeline(
            PipelineSettings(
                mirror_dest=str(mirror_dir),
                store=str(store_dir),
                parts=args.parts,
                base_url=host.base_url,
                jobs=3,
                segments=2,
                workers=2,
                model_path=str(model),
                task="multitask",
                evaluation_output=str(work / "evaluation"),
            )
        )
        with progress_for(not args.no_progress) as bars:
            report = run_pipeline(plan, LocalSteps(progress=bars))
    print(report.summary())
    if report.convert is None or report.interrupted:
        return exit_code(report) or EXIT_FAILURES

    from ..store import open_store

    store = open_store(str(store_dir))
    sql = (
        "SELECT scenario, count(*) AS samples, round(avg(foreground_fraction), 3) AS foreground, "
        "round(avg(depth_median_cm), 1) AS median_depth_cm, round(avg(fx), 1) AS fx "
        "FROM samples WHERE status = 'ok' GROUP BY scenario ORDER BY scenario"
    )
    print(f"\n[3/6] query: {sql}")
    from ..store.query import format_table

    print(format_table(store.query(sql)))
    if store.runs:  # the evaluate step wrote the model's run and its per-sample metrics
        run = store.runs[0].name
        joined = (
            "SELECT s.scenario, count(*) AS samples, round(avg(m.depth_absrel), 3) AS depth_absrel, "
            "round(avg(m.normal_median_deg), 1) AS normal_median_deg FROM samples s "
            f"JOIN metrics m USING (sample_id) WHERE m.run = '{run}' GROUP BY 1 ORDER BY 1"
        )
        print(f"run {run} (predictions in {store_dir / 'runs' / run}); query: {joined}")
        print(format_table(store.query(joined)))

    print("\n[4/6] infer: the stand-in model over every image of the store (batched, in this process)")
    from ..engine import make_executor
    from ..infer.batch import InferSettings, plan_inference, run_inference

    settings = InferSettings(
        output=str(work / "predictions"),
        model_path=str(model),
        task="multitask",
        store=str(store_dir),
        batch_size=4,
        workers=2,
        vis=True,
    )
    with progress_for(not args.no_progress) as bars, make_executor("threads", 2) as executor:
        inferred = run_inference(plan_inference(settings), executor, progress=bars)
    print(inferred.summary())

    print("\n[5/6] pictures")
    pictures = work / "pictures"
    from ..store.show import query_picture, write_picture

    grid = write_picture(
        str(pictures / "samples.png"),
        query_picture(
            str(store_dir),
            "SELECT * FROM samples QUALIFY row_number() OVER (PARTITION BY scenario ORDER BY sample_id) <= 2 "
            "ORDER BY sample_id",
            limit=6,
            columns=2,
        ),
    )
    from ..infer.predict import ModelChoice, predict_image

    first = int(store.sample_ids[0])
    image = demo.export_sample_image(str(store_dir), first, pictures / f"sample_{first:07d}.png")
    panels = predict_image(
        str(image), ModelChoice(multitask=(str(model), "stand-in multi-task")), str(pictures)
    )

    print(f"\n[6/6] done in {time.monotonic() - started:.0f} s. Where everything is:")
    for label, where in (
        ("mirror (verified zips + manifest.json)", mirror_dir),
        ("store (Zarr v3 + Parquet metadata)", store_dir),
        ("run: predictions + metrics in the store", store_dir / "runs"),
        ("predictions (+ _runs/ results tables)", work / "predictions"),
        ("evaluation (metrics table + JSON)", work / "evaluation"),
        ("samples grid", grid),
        ("prediction panel", panels[0]),
    ):
        print(f"  {label:40s} {where}")
    print("\n" + demo.STAND_IN_NOTE)
    failed = report.failure_count or inferred.failure_count

    from ..browse import browse

    with progress_for(not args.no_progress) as bars:
        page = browse(str(store_dir), str(work / "browse"), workers=2, progress=bars)
    failed = failed or page.failure_count
    print(f"\nbrowse: samples, runs and metrics as a page that opens from disk:\n  {page.index}")
    return EXIT_FAILURES if failed else EXIT_OK
