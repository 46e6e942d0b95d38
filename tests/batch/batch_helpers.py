"""Helpers for the batch inference tests: small real images from the SynthHuman previews."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PREVIEWS = ROOT.parent / "shared" / "synthhuman" / "preview"


def preview_crops(count: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR crops (width x height ``size``) of the real preview renders."""
    sources = [cv2.imread(str(p)) for p in sorted(PREVIEWS.glob("*.jpg"))]
    sources = [s for s in sources if s is not None]
    assert sources, f"no preview images under {PREVIEWS}"
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
