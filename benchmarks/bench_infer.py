"""Batch inference benchmark: ``infer`` against the model alone and a one-session loop.

For each model (a tiny multi-task conv net, and a ViT-B/16-sized depth encoder at
512 x 512 with random weights, ~107 GMACs: the compute of DAViD-Base), on the same
SynthHuman-sized images (384 x 512 JPEG crops of the real previews), these modes:

- ``floor``: the library's ``model.run`` alone on pre-decoded, pre-processed batches (the
  session created before timing). Nothing can be faster than this.
- ``floor-spin``: the same calls on a plain ``onnxruntime.InferenceSession`` with ORT's
  default options (its threads spin between calls): the spinning setting, measured alone.
- ``infer``: the library's batch path, ``run_inference`` on one thread (decode and
  pre-process ahead in threads, batched model calls, post-process, encode and write behind,
  one sync per model call's files, commit markers, results tables). Once-per-run costs
  are timed apart and printed, not counted: loading the model and planning (listing the
  inputs and the output folder, hashing the model file: ~0.3 s per 100 MB here).
- ``infer-spin``: ``infer`` with ORT's spinning switched back on (the other setting).
- ``infer-old``: ``infer`` as committed in git revision ``--before`` (default ``HEAD``):
  its ``david_data/infer`` over a copy of this checkout's other packages, in a temp
  folder: "before", same run. The issue-10 changes landed in ``3b28374``; their "before"
  is ``--before 3b28374~1``.
- ``seq``: the loop a user writes without the library: one ``onnxruntime.InferenceSession``
  (default options), then per image ``cv2.imread``, pre-process, run, post-process, encode
  (OpenCV 16-bit PNG level 1, OpenEXR uncompressed), ``Path.write_bytes`` (no sync).
- ``seq-lib``: the same loop with the library's pieces (its session and encoders): what is
  left of the gain is the overlap of the stages.

Every mode runs in its own child process, the modes interleaved round after round (the
machine is shared: load drifts); figures are medians over rounds of the rate measured
inside the child, ratios are medians of per-round ratios; CPU is the child's user + system
time per image while timed (steadier than rates under load); peak RSS comes from ``wait4``.
A stage table (one thread, CPU ms per image) shows where an image's time goes, old and new.

    .venv/bin/python benchmarks/bench_infer.py [--quick] [--no-vit] [--before REV]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CODE = Path(os.environ.get("BENCH_INFER_CODE", ROOT))
"""Where the child imports ``david_data`` from (``infer-old``: the temp folder)."""
sys.path.insert(0, str(CODE))
PREVIEWS = ROOT.parent / "shared" / "synthhuman" / "preview"
TASKS = {"multitask": ("depth", "normal", "foreground"), "depth": ("depth",)}


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


def old_code(work: Path, rev: str) -> Path | None:
    """This checkout's ``david_data`` with ``david_data/infer`` as in git revision ``rev``,
    in ``work``; None when there is no git or that infer is what is checked out."""
    changed = subprocess.run(
        ["git", "diff", "--quiet", rev, "--", "david_data/infer"], cwd=ROOT, check=False
    )
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "david_data/infer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if changed.returncode not in (0, 1) or (changed.returncode == 0 and not untracked.stdout):
        return None
    target = work / "old"
    shutil.copytree(
        ROOT / "david_data", target / "david_data", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.rmtree(target / "david_data" / "infer")
    archive = subprocess.run(
        ["git", "archive", rev, "david_data/infer"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


# --- child modes: each returns {"seconds": ..., "images": ..., "cpu": ...} ---------------


def _timed(fn: Callable[[], int]) -> dict[str, float]:
    """Run ``fn`` (returns the number of images) and time it: wall and process CPU."""
    before, start = os.times(), time.perf_counter()
    images = fn()
    seconds, after = time.perf_counter() - start, os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"seconds": seconds, "images": images, "cpu": cpu}


def _tensors(images: Path) -> list[Any]:
    from david_data.infer.images import decode_image
    from david_data.infer.runtime import preprocess

    return [preprocess(decode_image(p.read_bytes(), p.name))[0] for p in sorted(images.iterdir())]


def _plain_session(model_path: str) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])


def child_floor(images: Path, model_path: str, task: str, batch: int) -> dict[str, float]:
    import numpy as np

    from david_data.infer.model import load_model

    model = load_model(model_path, task)
    tensors = _tensors(images)
    model.run(np.stack(tensors[:batch]))  # warm up

    def run() -> int:
        for i in range(0, len(tensors), batch):
            model.run(np.stack(tensors[i : i + batch]))
        return len(tensors)

    return _timed(run)


def child_floor_spin(images: Path, model_path: str, task: str, batch: int) -> dict[str, float]:
    import numpy as np

    session = _plain_session(model_path)
    name = session.get_inputs()[0].name
    tensors = _tensors(images)
    session.run(None, {name: np.stack(tensors[:batch])})

    def run() -> int:
        for i in range(0, len(tensors), batch):
            session.run(None, {name: np.stack(tensors[i : i + batch])})
        return len(tensors)

    return _timed(run)


def child_infer(
    images: Path, model_path: str, task: str, batch: int, out: Path, spin: bool = False
) -> dict[str, float]:
    from david_data.engine import ThreadExecutor
    from david_data.infer import session as sessions
    from david_data.infer.batch import InferSettings, plan_inference, run_inference
    from david_data.infer.model import load_model

    if spin and hasattr(sessions, "session_options"):
        import onnxruntime as ort

        def spinning(threads: int | None) -> Any:
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            return options

        sessions.session_options = spinning  # type: ignore[assignment]
    load_model(model_path, task)
    settings = InferSettings(
        input=str(images), output=str(out), model_path=model_path, task=task, batch_size=batch
    )
    start = time.perf_counter()
    plan = plan_inference(settings)
    planned = time.perf_counter()
    reports = []

    def run() -> int:
        executor = ThreadExecutor(1)  # batches one after the other
        reports.append(run_inference(plan, executor))
        executor.close()
        return reports[0].ok

    result = _timed(run)
    assert reports[0].failed == 0 and reports[0].ok == reports[0].total, reports[0].summary()
    return {**result, "plan_seconds": planned - start}


def _old_encoders() -> Callable[[dict[str, Any]], dict[str, bytes]]:
    """What a user reaches for: OpenCV's 16-bit PNG (level 1), OpenEXR uncompressed."""
    import cv2
    import numpy as np

    from david_data.exr import encode_exr

    def encode(outputs: dict[str, Any]) -> dict[str, bytes]:
        files = {}
        if "depth" in outputs:
            files["depth"] = encode_exr(outputs["depth"], ("Y",), compression="none")
        if "normal" in outputs:
            files["normal"] = encode_exr(outputs["normal"], ("X", "Y", "Z"), compression="none")
        if "foreground" in outputs:
            mask = np.round(np.clip(outputs["foreground"], 0, 1) * 65535.0).astype(np.uint16)
            files["foreground"] = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 1])[
                1
            ].tobytes()
        return files

    return encode


def child_seq(
    images: Path, model_path: str, task: str, out: Path, library: bool = False
) -> dict[str, float]:
    """One session, then per image: read, pre-process, run, post-process, encode, write."""
    import cv2
    import numpy as np

    from david_data.infer.model import load_model
    from david_data.infer.outputs import encode_outputs, output_names
    from david_data.infer.runtime import postprocess, preprocess

    tasks = TASKS[task]
    if library:
        model = load_model(model_path, task)

        def run_one(chw: Any) -> dict[str, Any]:
            return {t: v[0] for t, v in model.run(chw[None]).items()}

        encode: Callable[[dict[str, Any]], dict[str, bytes]] = encode_outputs
    else:
        session = _plain_session(model_path)
        name = session.get_inputs()[0].name

        def run_one(chw: Any) -> dict[str, Any]:
            raw = session.run(None, {name: chw[None]})
            return {
                t: r[0].reshape(r.shape[-3:] if t == "normal" else r.shape[-2:])
                for t, r in zip(tasks, raw, strict=True)
            }

        encode = _old_encoders()
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(images.iterdir())
    run_one(np.zeros((3, 512, 512), np.float32))  # warm up, as the library's session is

    def run() -> int:
        for path in paths:
            image = cv2.imread(str(path))
            assert image is not None, path
            chw, info = preprocess(image)
            files = encode(postprocess(run_one(chw), info))
            for kind, rel in output_names(path.name, files).items():
                (out / rel).write_bytes(files[kind])
        return len(paths)

    return _timed(run)


def child_stages(images: Path, model_path: str, task: str) -> dict[str, float]:
    """CPU ms per image of each step, in one thread (this code's functions)."""
    import numpy as np

    from david_data.infer.images import decode_image
    from david_data.infer.model import load_model
    from david_data.infer.outputs import encode_depth, encode_foreground, encode_normal
    from david_data.infer.runtime import postprocess, preprocess

    model = load_model(model_path, task)
    times: dict[str, list[float]] = {}

    def step(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.thread_time()
        value = fn(*args)
        times.setdefault(name, []).append((time.thread_time() - start) * 1000)
        return value

    encoders = {"depth": encode_depth, "normal": encode_normal, "foreground": encode_foreground}
    for path in sorted(images.iterdir())[:24]:
        image = step("decode", decode_image, path.read_bytes(), path.name)
        chw, info = step("pre-process", preprocess, image)
        raw = model.run(np.stack([chw] * 4))
        outputs = step("post-process", postprocess, {t: v[0] for t, v in raw.items()}, info)
        for kind, value in outputs.items():
            step(f"encode {kind}", encoders[kind], value)
    return {name: statistics.median(values) for name, values in times.items()}


CHILDREN: dict[str, Callable[..., dict[str, float]]] = {
    "floor": lambda i, m, t, b, o: child_floor(i, m, t, b),
    "floor-spin": lambda i, m, t, b, o: child_floor_spin(i, m, t, b),
    "infer": lambda i, m, t, b, o: child_infer(i, m, t, b, o),
    "infer-spin": lambda i, m, t, b, o: child_infer(i, m, t, b, o, spin=True),
    "infer-old": lambda i, m, t, b, o: child_infer(i, m, t, b, o),
    "seq": lambda i, m, t, b, o: child_seq(i, m, t, o),
    "seq-lib": lambda i, m, t, b, o: child_seq(i, m, t, o, library=True),
    "stages": lambda i, m, t, b, o: child_stages(i, m, t),
    "stages-old": lambda i, m, t, b, o: child_stages(i, m, t),
}


def run_child(args: list[str], code: Path | None = None) -> tuple[dict[str, float], int]:
    """Run this script in child mode; returns its JSON result and peak RSS in bytes."""
    env = dict(os.environ)
    if code is not None:
        env["BENCH_INFER_CODE"] = str(code)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        raise SystemExit(f"child {args[0]} failed: {err}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss * 1024


def _ratio_line(label: str, values: list[float], note: str = "") -> None:
    print(
        f"  {label:34s} {statistics.median(values):5.2f}x  (per round "
        + ", ".join(f"{x:.2f}" for x in values)
        + f"){note}",
        flush=True,
    )


def measure(
    name: str,
    model: str,
    task: str,
    images: Path,
    batch: int,
    repeats: int,
    work: Path,
    modes: tuple[str, ...],
    old: Path | None,
) -> dict[str, list[float]]:
    """Run every mode once per round, ``repeats`` rounds (interleaved, so load changes on a
    shared machine hit all alike); ratios are taken per round."""
    rates: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[float]] = {m: [] for m in modes}
    peaks: dict[str, list[int]] = {m: [] for m in modes}
    plans: list[float] = []
    for r in range(repeats):
        for mode in modes:
            out = work / f"out-{name}-{mode}-{r}"
            shutil.rmtree(out, ignore_errors=True)
            code = old if mode == "infer-old" else None
            result, peak = run_child([mode, str(images), model, task, str(batch), str(out)], code)
            rates[mode].append(result["images"] / result["seconds"])
            cpus[mode].append(result["cpu"] / result["images"] * 1000)
            if "plan_seconds" in result:
                plans.append(result["plan_seconds"])
            peaks[mode].append(peak)
            shutil.rmtree(out, ignore_errors=True)
    for mode in modes:
        print(
            f"  {mode:10s} {statistics.median(rates[mode]):7.2f} images/s (runs "
            + ", ".join(f"{x:.2f}" for x in rates[mode])
            + f")  CPU {statistics.median(cpus[mode]):6.1f} ms/image"
            + f"  peak RSS {max(peaks[mode]) / 2**20:5.0f} MiB",
            flush=True,
        )
    print(f"  (infer's plan, once per run, not counted: median {statistics.median(plans):.2f} s)")

    def per_round(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[a], rates[b], strict=True)]

    print("  throughput ratios (medians of per-round ratios):")
    for new, label in (("infer", "after"), ("infer-old", "before")):
        if new in rates and "seq" in rates:
            _ratio_line(f"{new} / seq ({label})", per_round(new, "seq"))
    for new, label in (("infer", "after"), ("infer-old", "before")):
        if new in rates:
            _ratio_line(
                f"{new} / floor ({label})",
                per_round(new, "floor"),
                "  1.00 = the model never waits",
            )
    for a, b in (("seq-lib", "seq"), ("floor", "floor-spin"), ("infer", "infer-spin")):
        if a in rates and b in rates:
            _ratio_line(f"{a} / {b}", per_round(a, b))
    return rates


def stages(images: Path, model: str, task: str, old: Path | None) -> None:
    new, _ = run_child(["stages", str(images), model, task, "4", "-"])
    before = run_child(["stages-old", str(images), model, task, "4", "-"], old)[0] if old else {}
    print("  one thread, CPU ms per image (median of 24)" + (": before -> after" if old else ""))
    for step_name, value in new.items():
        was = f"{before[step_name]:6.2f} -> " if step_name in before else ""
        print(f"    {step_name:22s} {was}{value:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--no-vit", action="store_true", help="only the tiny model")
    parser.add_argument(
        "--before", default="HEAD", metavar="REV", help="git revision of 'before' (infer-old)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, images, model, task, batch, out = args.child
        print(json.dumps(CHILDREN[mode](Path(images), model, task, int(batch), Path(out))))
        return

    from david_data.infer.testmodels import build_tiny_model, build_vit_b16

    tiny_images, vit_images, repeats, vit_repeats = (48, 3, 3, 1) if args.quick else (128, 6, 5, 3)
    work = Path(tempfile.mkdtemp(prefix="bench_infer_"))
    try:
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average "
            f"{os.getloadavg()[0]:.1f}; images 384 x 512 JPEG crops of the previews"
        )
        old = old_code(work, args.before)
        if old is None:
            print(f"(no 'before': david_data/infer is as in git {args.before}, or no git)")
        modes = ("floor", "floor-spin", "infer", "infer-spin", "infer-old", "seq", "seq-lib")
        modes = tuple(m for m in modes if old or m != "infer-old")
        tiny = build_tiny_model(work / "tiny.onnx", "multitask")
        make_images(work / "tiny-images", tiny_images)
        print(f"\ntiny multi-task conv model, {tiny_images} images, batch 4, median of {repeats}:")
        measure("tiny", str(tiny), "multitask", work / "tiny-images", 4, repeats, work, modes, old)
        stages(work / "tiny-images", str(tiny), "multitask", old)
        if args.no_vit:
            return

        start = time.perf_counter()
        vit = build_vit_b16(work / "vit.onnx")
        print(f"\n(built the ViT-B/16 model in {time.perf_counter() - start:.0f} s)")
        make_images(work / "vit-images", vit_images)
        print(
            f"ViT-B/16 depth encoder at 512 x 512 (~107 GMACs), {vit_images} images, batch 1, "
            f"median of {vit_repeats}:"
        )
        vit_modes = tuple(
            m
            for m in ("floor", "floor-spin", "infer", "infer-spin", "infer-old", "seq")
            if m in modes
        )
        measure("vit", str(vit), "depth", work / "vit-images", 1, vit_repeats, work, vit_modes, old)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
