"""Helpers for the batch inference tests: small real images cut from the SynthHuman
preview tiles shipped in the package (``david_data/synth/assets``), so no ``../shared``
is needed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "david_data"]
"""``david-data`` as a user runs it, with this interpreter (no path into a virtualenv)."""
TILES = ROOT / "david_data" / "synth" / "assets"


def preview_crops(count: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR crops (width x height ``size``) of the real preview renders."""
    sources = [cv2.imread(str(p)) for p in sorted(TILES.glob("*.png"))]
    sources = [s for s in sources if s is not None]
    assert sources, f"no preview tiles under {TILES}"
    rng = np.random.default_rng(seed)
    w, h = size
    crops = []
    for i in range(count):
        src = sources[i % len(sources)]
        side = int(rng.integers(96, 256))
        y = int(rng.integers(0, src.shape[0] - side))
        x = int(rng.integers(0, src.shape[1] - side))
        crops.append(
            cv2.resize(src[y : y + side, x : x + side], (w, h), interpolation=cv2.INTER_AREA)
        )
    return crops


def write_images(folder: Path, count: int, seed: int = 0) -> list[str]:
    """Write ``count`` images (PNG and JPEG, in nested folders); returns their relative names."""
    names = []
    for i, crop in enumerate(preview_crops(count, seed=seed)):
        sub = ("", "a/", "a/b/")[i % 3]
        ext = ".png" if i % 2 else ".jpg"
        rel = f"{sub}img{i:04d}{ext}"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(ext, crop)
        assert ok
        path.write_bytes(buf.tobytes())
        names.append(rel)
    return sorted(names)


def infer(settings: Any, *, workers: int = 1) -> Any:
    """Plan and run an inference in this process (the CLI's default path, no Prefect)."""
    from david_data.engine import make_executor
    from david_data.infer.batch import plan_inference, run_inference

    with make_executor("threads", workers) as executor:
        return run_inference(plan_inference(settings), executor)


def evaluate(settings: Any) -> Any:
    """Plan and run an evaluation in this process."""
    from david_data.engine import make_executor
    from david_data.infer.evaluate import plan_evaluation, run_evaluation

    with make_executor("threads", 1) as executor:
        return run_evaluation(plan_evaluation(settings), executor)


def cli(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> Any:
    """Run ``david-data ARGS`` as a user would (a subprocess; no Prefect API configured)."""
    import os
    import subprocess

    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd or ROOT, env={**base, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )
