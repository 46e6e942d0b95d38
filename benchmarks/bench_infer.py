"""Batch inference benchmark: ``infer`` against the model's bare compute and the demo's loop.

For each model (a tiny multi-task conv net, and a ViT-B/16-sized depth encoder at
512 x 512 with random weights, ~107 GMACs: the compute of DAViD-Base), on the same
SynthHuman-sized images (384 x 512 JPEG crops of the real previews):

- floor: ``model.run`` alone on pre-decoded, pre-processed batches (the session is
  created before timing). Nothing can be faster than this.
- infer: the library's batch path, ``run_inference`` on one thread (decode and pre-process ahead in
  threads, batched model calls, post-process, encode EXR/PNG and write atomically
  behind, commit markers, results tables). Once-per-run costs are timed apart and
  printed, not counted: loading the model (once per process) and planning (listing the
  inputs and the output folder, hashing the model file: ~0.3 s per 100 MB here).
  Prefect adds ~10 s once per run (flow start) and ~10 ms per batch task; it is left
  out so the figures show the engine.
- demo: the official demo's style: one image after another, a new ONNX Runtime session
  per image, read, pre-process, run, post-process, write the same output files.

Every mode runs in its own child process, the three modes interleaved round after round
(the machine is shared: load drifts); figures are medians over rounds of the rate
measured inside the child, ratios are medians of per-round ratios, peak RSS comes from
``wait4`` (for the ViT it is dominated by ONNX Runtime building the session, in every
mode). infer / floor near 1 means the model never waits; on 2 cores a tiny model cannot
reach it, because decoding, post-processing and encoding need the same cores.

    .venv/bin/python benchmarks/bench_infer.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PREVIEWS = ROOT.parent / "shared" / "synthhuman" / "preview"


def make_images(folder: Path, count: int) -> None:
    """``count`` 384 x 512 JPEG crops of the real preview renders (SynthHuman's size); the
    384 x 512 tiles shipped in the package when ``../shared`` is not there."""
    import cv2
    import numpy as np

    sources = [
        im
        for p in sorted(PREVIEWS.glob("SynthHuman-*.jpg"))
        if (im := cv2.imread(str(p))) is not None
    ] or [cv2.imread(str(p)) for p in sorted((ROOT / "david_data/synth/assets").glob("*.png"))]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        src = sources[i % len(sources)]
        y = int(rng.integers(0, max(1, src.shape[0] - 512)))
        x = int(rng.integers(0, max(1, src.shape[1] - 384)))
        cv2.imwrite(
            str(folder / f"img{i:04d}.jpg"),
            src[y : y + 512, x : x + 384],
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )


# --- child modes: each prints one JSON line {"seconds": ..., "images": ...} --------------


def child_floor(images: Path, model_path: str, task: str, batch: int) -> dict[str, float]:
    import numpy as np

    from david_data.infer.images import decode_image
    from david_data.infer.model import load_model
    from david_data.infer.runtime import preprocess

    model = load_model(model_path, task)
    tensors = [
        preprocess(decode_image(p.read_bytes(), p.name))[0] for p in sorted(images.iterdir())
    ]
    start = time.perf_counter()
    for i in range(0, len(tensors), batch):
        model.run(np.stack(tensors[i : i + batch]))
    return {"seconds": time.perf_counter() - start, "images": len(tensors)}


def child_infer(
    images: Path, model_path: str, task: str, batch: int, out: Path
) -> dict[str, float]:
    from david_data.engine import ThreadExecutor
    from david_data.infer.batch import InferSettings, plan_inference, run_inference
    from david_data.infer.model import load_model

    load_model(model_path, task)
    settings = InferSettings(
        input=str(images), output=str(out), model_path=model_path, task=task, batch_size=batch
    )
    start = time.perf_counter()
    plan = plan_inference(settings)
    planned = time.perf_counter()
    executor = ThreadExecutor(1)  # batches one after the other, as before
    report = run_inference(plan, executor)
    executor.close()
    seconds = time.perf_counter() - planned
    assert report.failed == 0 and report.ok == report.total, report.summary()
    return {"seconds": seconds, "images": report.ok, "plan_seconds": planned - start}


def child_demo(images: Path, model_path: str, task: str, out: Path) -> dict[str, float]:
    """The demo's loop: per image, a new session, read, pre-process, run, post-process, write."""
    import cv2
    import onnxruntime as ort

    from david_data.infer.outputs import encode_outputs, output_names
    from david_data.infer.runtime import postprocess, preprocess

    tasks = ("depth", "normal", "foreground") if task == "multitask" else (task,)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(images.iterdir())
    start = time.perf_counter()
    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None, path
        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        chw, info = preprocess(image)
        raw = session.run(None, {session.get_inputs()[0].name: chw[None]})
        outputs = {
            t: r[0].reshape(r.shape[-3:] if t == "normal" else r.shape[-2:])
            for t, r in zip(tasks, raw, strict=True)
        }
        files = encode_outputs(postprocess(outputs, info))
        for kind, name in output_names(path.name, files).items():
            (out / name).write_bytes(files[kind])
    return {"seconds": time.perf_counter() - start, "images": len(paths)}


def run_child(args: list[str]) -> tuple[dict[str, float], int]:
    """Run this script in child mode; returns its JSON result and peak RSS in bytes."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        raise SystemExit(f"child {args[0]} failed: {err}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss * 1024


def measure(
    name: str, model: str, task: str, images: Path, batch: int, repeats: int, work: Path
) -> dict[str, Any]:
    """Run floor, infer and demo once per round, ``repeats`` rounds (interleaved, so load
    changes on a shared machine hit all three alike); ratios are taken per round."""
    modes = ("floor", "infer", "demo")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    peaks: dict[str, list[int]] = {m: [] for m in modes}
    plans: list[float] = []
    for r in range(repeats):
        for mode in modes:
            out = work / f"out-{name}-{mode}-{r}"
            shutil.rmtree(out, ignore_errors=True)
            result, peak = run_child([mode, str(images), model, task, str(batch), str(out)])
            rates[mode].append(result["images"] / result["seconds"])
            if "plan_seconds" in result:
                plans.append(result["plan_seconds"])
            peaks[mode].append(peak)
            shutil.rmtree(out, ignore_errors=True)
    for mode in modes:
        print(
            f"  {mode:6s} {statistics.median(rates[mode]):8.2f} images/s (runs: "
            + ", ".join(f"{x:.2f}" for x in rates[mode])
            + f")  peak RSS {max(peaks[mode]) / 2**20:7.0f} MiB",
            flush=True,
        )
    print(
        f"  (infer's plan, once per run, not counted above: median {statistics.median(plans):.2f} s)"
    )
    vs_floor = [i / f for i, f in zip(rates["infer"], rates["floor"], strict=True)]
    vs_demo = [i / d for i, d in zip(rates["infer"], rates["demo"], strict=True)]
    print(
        f"  infer / floor throughput: {statistics.median(vs_floor):.2f}  (median of per-round ratios "
        + ", ".join(f"{x:.2f}" for x in vs_floor)
        + "; 1.00 = the model never waits)"
    )
    print(
        f"  infer vs demo loop:       {statistics.median(vs_demo):.2f}x faster  (per round "
        + ", ".join(f"{x:.2f}" for x in vs_demo)
        + ")",
        flush=True,
    )
    return {"rates": rates, "peaks": peaks, "vs_floor": vs_floor, "vs_demo": vs_demo}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer images and repeats (about 2 minutes)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, images, model, task, batch, out = args.child
        if mode == "floor":
            result = child_floor(Path(images), model, task, int(batch))
        elif mode == "infer":
            result = child_infer(Path(images), model, task, int(batch), Path(out))
        else:
            result = child_demo(Path(images), model, task, Path(out))
        print(json.dumps(result))
        return

    from david_data.infer.testmodels import build_tiny_model, build_vit_b16

    tiny_images, vit_images, repeats, vit_repeats = (48, 3, 3, 1) if args.quick else (128, 6, 5, 3)
    work = Path(tempfile.mkdtemp(prefix="bench_infer_"))
    try:
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); images 384 x 512 JPEG crops of the previews"
        )
        tiny = build_tiny_model(work / "tiny.onnx", "multitask")
        make_images(work / "tiny-images", tiny_images)
        print(f"\ntiny multi-task conv model, {tiny_images} images, batch 4, median of {repeats}:")
        measure("tiny", str(tiny), "multitask", work / "tiny-images", 4, repeats, work)

        start = time.perf_counter()
        vit = build_vit_b16(work / "vit.onnx")
        print(f"\n(built the ViT-B/16 model in {time.perf_counter() - start:.0f} s)")
        make_images(work / "vit-images", vit_images)
        print(
            f"ViT-B/16 depth encoder at 512 x 512 (~107 GMACs), {vit_images} images, batch 1, median of {vit_repeats}:"
        )
        measure("vit", str(vit), "depth", work / "vit-images", 1, vit_repeats, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
