"""Batch inference benchmark: ``infer`` against a plain loop of the library's own pieces.

For each model (a tiny multi-task conv net, and a ViT-B/16-sized depth encoder at
512 x 512 with random weights, ~107 GMACs: the compute of DAViD-Base), on the same
SynthHuman-sized images (384 x 512 JPEG crops of the real previews), these modes:

- ``seq-lib``: the baseline, what a user writes with the library's pieces and no batch
  path: the library's model (its session, loaded and warmed up before timing), then one
  image at a time: the library's reader (read and decode), ``preprocess``, ``model.run``
  on one image, ``postprocess``, ``encode_outputs``, ``write_outputs`` (each file written
  atomically, temp file and rename, not synced; no commit marker).
- ``floor``: the library's ``model.run`` alone on pre-decoded, pre-processed images, in
  calls of the batch size ``infer`` uses (the session created before timing).
- ``infer``: the library's batch path with its defaults, ``run_inference`` on one thread
  (decode and pre-process ahead in threads, model calls, post-process, encode and write
  behind, one sync per model call's files, commit markers, results tables). Once-per-run
  costs are timed apart and printed, not counted: loading the model and planning.
- ``infer-old``: ``infer`` as committed in git revision ``--before`` (default ``HEAD``):
  its ``david_data/infer`` over a copy of this checkout's other packages, in a temp
  folder: "before", same run, with its own defaults.

Every mode runs in its own child process, the modes interleaved round after round (the
machine is shared: load drifts, and the load average is printed beside every figure);
figures are medians over rounds of the rate measured inside the child, ratios are medians
of per-round ratios, with their range; CPU is the child's user + system time per image
while timed (steadier than rates under load); peak RSS comes from ``wait4``. The goals of
issue 17 are judged at the end, one verdict per metric. A stage table (one thread, CPU ms
per image) shows where an image's time goes, old and new.

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


def child_infer(images: Path, model_path: str, task: str, out: Path) -> dict[str, float]:
    """The library's batch path with its defaults (this code's, or ``--before``'s)."""
    from david_data.engine import ThreadExecutor
    from david_data.infer.batch import InferSettings, plan_inference, run_inference
    from david_data.infer.model import load_model

    load_model(model_path, task)
    settings = InferSettings(input=str(images), output=str(out), model_path=model_path, task=task)
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
    return {**result, "plan_seconds": planned - start, "batch": plan.settings.batch_size or 0}


def child_seq_lib(images: Path, model_path: str, task: str, out: Path) -> dict[str, float]:
    """One image at a time through the library's pieces (see the module docstring)."""
    import numpy as np

    from david_data.fsutil import resolve
    from david_data.infer.inputs import InputSource, list_inputs, open_reader
    from david_data.infer.model import load_model
    from david_data.infer.outputs import encode_outputs, write_outputs
    from david_data.infer.runtime import postprocess, preprocess

    model = load_model(model_path, task)
    source = InputSource(url=str(images))
    items = list_inputs(source).items
    reader = open_reader(source)
    out.mkdir(parents=True, exist_ok=True)
    fs, root = resolve(str(out))
    model.run(np.zeros((1, 3, 512, 512), np.float32))  # warm up, as infer's model is

    def run() -> int:
        for item in items:
            chw, info = preprocess(reader.read(item))
            raw = model.run(chw[None])
            files = encode_outputs(postprocess({t: v[0] for t, v in raw.items()}, info))
            write_outputs(
                fs,
                root,
                item.rel,
                files,
                model_sha256="0" * 64,
                input_url=reader.url(item),
                input_key=item.key,
            )
        return len(items)

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
    "infer": lambda i, m, t, b, o: child_infer(i, m, t, o),
    "infer-old": lambda i, m, t, b, o: child_infer(i, m, t, o),
    "seq-lib": lambda i, m, t, b, o: child_seq_lib(i, m, t, o),
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


def _spread(values: list[float]) -> str:
    """Median, then the range and every round's value."""
    return (
        f"{statistics.median(values):5.2f}x  (range {min(values):.2f}-{max(values):.2f}; "
        + "per round "
        + ", ".join(f"{x:.2f}" for x in values)
        + ")"
    )


class Measured:
    """Per-mode, per-round figures of one model's rounds."""

    def __init__(self, modes: tuple[str, ...]) -> None:
        self.rates: dict[str, list[float]] = {m: [] for m in modes}
        self.cpus: dict[str, list[float]] = {m: [] for m in modes}
        self.loads: dict[str, list[float]] = {m: [] for m in modes}
        self.peaks: dict[str, list[int]] = {m: [] for m in modes}
        self.plans: list[float] = []
        self.batch: dict[str, int] = {}

    def ratio(self, a: str, b: str) -> list[float] | None:
        """Per-round throughput ratios ``a / b`` (None when a mode did not run)."""
        if a not in self.rates or b not in self.rates:
            return None
        return [x / y for x, y in zip(self.rates[a], self.rates[b], strict=True)]

    def cpu_ratio(self, a: str, b: str) -> list[float] | None:
        """Per-round ratios of CPU per image ``b / a`` (> 1: ``a`` spends less)."""
        if a not in self.cpus or b not in self.cpus:
            return None
        return [y / x for x, y in zip(self.cpus[a], self.cpus[b], strict=True)]


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
) -> Measured:
    """Run every mode once per round, ``repeats`` rounds (interleaved, so load changes on a
    shared machine hit all alike); ratios are taken per round."""
    m = Measured(modes)
    for r in range(repeats):
        for mode in modes:
            out = work / f"out-{name}-{mode}-{r}"
            shutil.rmtree(out, ignore_errors=True)
            code = old if mode == "infer-old" else None
            load = os.getloadavg()[0]
            result, peak = run_child([mode, str(images), model, task, str(batch), str(out)], code)
            m.rates[mode].append(result["images"] / result["seconds"])
            m.cpus[mode].append(result["cpu"] / result["images"] * 1000)
            m.loads[mode].append((load + os.getloadavg()[0]) / 2)
            if "plan_seconds" in result and mode == "infer":
                m.plans.append(result["plan_seconds"])
            if "batch" in result:
                m.batch[mode] = int(result["batch"])
            m.peaks[mode].append(peak)
            shutil.rmtree(out, ignore_errors=True)
    for mode in modes:
        batch_note = f"  (model batch {m.batch[mode]})" if mode in m.batch else ""
        print(
            f"  {mode:10s} {statistics.median(m.rates[mode]):7.2f} images/s (runs "
            + ", ".join(f"{x:.2f}" for x in m.rates[mode])
            + f")  CPU {statistics.median(m.cpus[mode]):6.1f} ms/image"
            + f"  peak RSS {max(m.peaks[mode]) / 2**20:5.0f} MiB"
            + "  load "
            + ", ".join(f"{x:.1f}" for x in m.loads[mode])
            + batch_note,
            flush=True,
        )
    if m.plans:
        print(
            f"  (infer's plan, once per run, not counted: median {statistics.median(m.plans):.2f} s)"
        )
    print("  ratios, medians of per-round ratios:")
    for a, b in (
        ("infer", "seq-lib"),
        ("infer-old", "seq-lib"),
        ("infer", "floor"),
        ("infer-old", "floor"),
        ("infer", "infer-old"),
    ):
        values = m.ratio(a, b)
        if values:
            print(f"    throughput {a} / {b:9s} {_spread(values)}")
    for a, b in (("infer", "seq-lib"), ("infer-old", "seq-lib")):
        values = m.cpu_ratio(a, b)
        if values:
            print(f"    CPU per image {b} / {a:7s} {_spread(values)}  (> 1: {a} spends less)")
    cores = os.cpu_count() or 1
    for mode in ("infer", "infer-old"):
        values = ceiling(m, mode, cores)
        if values:
            print(
                f"    overlap ceiling {mode:9s} {_spread(values)}  ({cores} cores x 1000 / "
                f"{mode}'s CPU ms per image, / seq-lib's images/s)"
            )
    return m


def stages(images: Path, model: str, task: str, old: Path | None) -> None:
    new, _ = run_child(["stages", str(images), model, task, "4", "-"])
    before = run_child(["stages-old", str(images), model, task, "4", "-"], old)[0] if old else {}
    print("  one thread, CPU ms per image (median of 24)" + (": before -> after" if old else ""))
    for step_name, value in new.items():
        was = f"{before[step_name]:6.2f} -> " if step_name in before else ""
        print(f"    {step_name:22s} {was}{value:6.2f}")


def verdict(metric: str, values: list[float] | None, goal: float, cause: str) -> None:
    """One line judging one metric: its median against its goal (and the cause if missed)."""
    if not values:
        print(f"  {metric}: not measured")
        return
    median = statistics.median(values)
    met = median >= goal
    print(
        f"  {metric}: {median:.2f}x (range {min(values):.2f}-{max(values):.2f}), goal >= {goal:.2f}x: "
        + ("met" if met else f"MISSED; {cause}")
    )


def ceiling(m: Measured, mode: str, cores: int) -> list[float] | None:
    """Per round, the most any overlap could give ``mode`` over seq-lib: ``cores`` busy
    with nothing but ``mode``'s CPU per image (cores x 1000 / CPU ms = images/s), divided
    by seq-lib's measured rate."""
    if mode not in m.cpus or "seq-lib" not in m.rates:
        return None
    return [
        cores * 1000 / cpu / seq for cpu, seq in zip(m.cpus[mode], m.rates["seq-lib"], strict=True)
    ]


def _cause(m: Measured, mode: str, cores: int) -> str:
    """What the figures say about a missed ``mode / seq-lib`` goal: its overlap ceiling and
    how much of it the mode reached."""
    cpu = statistics.median(m.cpu_ratio(mode, "seq-lib") or [0.0])
    top = statistics.median(ceiling(m, mode, cores) or [0.0])
    reached = statistics.median(m.ratio(mode, "seq-lib") or [0.0]) / top if top else 0.0
    return (
        f"{mode} spends {1 / cpu:.2f}x seq-lib's CPU per image, so even with its {cores} cores "
        f"busy with nothing else it could reach {top:.2f}x seq-lib (overlap ceiling); it "
        f"reached {reached:.0%} of that ceiling, at load "
        f"{statistics.median(m.loads[mode]):.1f} (its own threads included)"
    )


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

    from david_data.infer.plan import default_batch_size
    from david_data.infer.testmodels import build_tiny_model, build_vit_b16

    tiny_images, vit_images, repeats, vit_repeats = (48, 3, 3, 3) if args.quick else (128, 6, 5, 3)
    batch = default_batch_size("auto")
    work = Path(tempfile.mkdtemp(prefix="bench_infer_"))
    try:
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average "
            f"{os.getloadavg()[0]:.1f}; images 384 x 512 JPEG crops of the previews"
        )
        old = old_code(work, args.before)
        if old is None:
            print(f"(no 'before': david_data/infer is as in git {args.before}, or no git)")
        modes: tuple[str, ...] = ("seq-lib", "floor", "infer", "infer-old")
        modes = tuple(m for m in modes if old or m != "infer-old")
        tiny = build_tiny_model(work / "tiny.onnx", "multitask")
        make_images(work / "tiny-images", tiny_images)
        print(
            f"\ntiny multi-task conv model, {tiny_images} images, floor at batch {batch}, "
            f"median of {repeats}:"
        )
        t = measure(
            "tiny", str(tiny), "multitask", work / "tiny-images", batch, repeats, work, modes, old
        )
        stages(work / "tiny-images", str(tiny), "multitask", old)
        v: Measured | None = None
        if not args.no_vit:
            start = time.perf_counter()
            vit = build_vit_b16(work / "vit.onnx")
            print(f"\n(built the ViT-B/16 model in {time.perf_counter() - start:.0f} s)")
            make_images(work / "vit-images", vit_images)
            print(
                f"ViT-B/16 depth encoder at 512 x 512 (~107 GMACs), {vit_images} images, "
                f"floor at batch {batch}, median of {vit_repeats}:"
            )
            vit_modes = tuple(m for m in ("floor", "infer", "infer-old") if m in modes)
            v = measure(
                "vit",
                str(vit),
                "depth",
                work / "vit-images",
                batch,
                vit_repeats,
                work,
                vit_modes,
                old,
            )

        print("\ngoals (issue 17, goal 3), each judged on the metric it names:")
        cores = os.cpu_count() or 1
        for mode, label in (("infer", "after"), ("infer-old", "before")):
            if mode not in t.rates:
                continue
            verdict(
                f"tiny model, throughput {mode} / seq-lib ({label})",
                t.ratio(mode, "seq-lib"),
                1.5,
                _cause(t, mode, cores),
            )
            verdict(
                f"tiny model, never slower on {cores} cores: throughput {mode} / seq-lib ({label})",
                t.ratio(mode, "seq-lib"),
                1.0,
                _cause(t, mode, cores),
            )
            if v is not None:
                verdict(
                    f"ViT model, throughput {mode} / floor ({label})",
                    v.ratio(mode, "floor"),
                    0.95,
                    "the model waits for reading or writing",
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
