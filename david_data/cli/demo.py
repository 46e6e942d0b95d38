"""``david-data demo``: the whole chain (mirror → convert → query → infer → evaluate →
pictures) on an embedded, offline SynthHuman-like host, in this process."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .._extras import require
from ..demo import DEMO_PARTS, DEMO_SAMPLES_PER_PART
from ..engine import EXIT_FAILURES, EXIT_OK
from ..errors import ConfigError
from ..facts import SAMPLES_PER_PART
from ._options import add_no_progress


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from ..infer.plan import InferSettings
    from ..jobs import infer

    settings = InferSettings(
        output=str(work / "predictions"),
        model_path=str(model),
        task="multitask",
        store=str(store_dir),
        batch_size=4,
        workers=2,
        vis=True,
    )
    with progress_for(not args.no_progress) as bars:
        inferred = infer().run_here(infer().plan(settings), progress=bars)
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
