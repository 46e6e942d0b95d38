"""The pieces of ``david-data demo``: the whole chain on an embedded, offline default.

The demo serves synthetic SynthHuman parts from a loopback host (the same layout as the
official one), and stands in a tiny ONNX multi-task model for the DAViD weights, which
cannot be downloaded here. Everything lands under one work folder::

    WORK/host/          parts served by the local host (SynthHuman_0000.zip ...)
    WORK/mirror/        the verified mirror and its manifest.json
    WORK/store/         the Zarr v3 + Parquet store
    WORK/models/        the stand-in ONNX model
    WORK/predictions/   inference outputs over the store's images (+ _runs/ tables)
    WORK/evaluation/    metrics of the stand-in model against the ground truth
    WORK/pictures/      a grid of samples and a prediction panel
"""

from __future__ import annotations

from pathlib import Path

from . import facts
from .progress import NullProgress, Progress

DEMO_PARTS = "0,25,50"
"""One part per scenario: faces, full body, upper body."""
DEMO_SAMPLES_PER_PART = 12

STAND_IN_NOTE = (
    "NOTE: the predictions come from a tiny stand-in ONNX model built by the demo (random "
    "weights, same inputs and outputs as the DAViD multi-task model), because no weights can "
    "be downloaded here. With internet access, use the real models:\n"
    "  david-data models fetch multitask-large\n"
    "  david-data infer STORE_OR_IMAGES OUT --model multitask-large"
)


def prepare_source(
    work: Path, parts: list[str], samples_per_part: int, progress: Progress | None = None
) -> Path:
    """Write synthetic parts for the local host (kept across runs when already there)."""
    from .synth import write_parts

    host_dir = work / "host"
    missing = [p for p in parts if not (host_dir / p).exists()]
    if missing:
        write_parts(host_dir, missing, samples_per_part, progress=progress or NullProgress())
    return host_dir


def build_stand_in_model(work: Path) -> Path:
    """Build (once) the tiny multi-task ONNX model that stands in for the DAViD weights."""
    from .infer.testmodels import build_tiny_model

    path = work / "models" / "stand-in-multitask.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_tiny_model(path, "multitask")
    return path


def export_sample_image(store_url: str, sample_id: int, dest: Path) -> Path:
    """Write one store sample's RGB as a PNG (the input of the ``predict`` panel)."""
    import cv2

    from .store import open_store

    sample = open_store(store_url).sample(sample_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sample["rgb"], cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode sample {sample_id} as PNG")
    dest.write_bytes(png.tobytes())
    return dest


def demo_part_names(spec: str = DEMO_PARTS) -> list[str]:
    """The parts the demo serves and mirrors."""
    return facts.parse_parts(spec)
