"""Fixtures for the runtime tests: tiny ONNX models and real-pixel test images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from david_data.infer.testmodels import build_tiny_model

PREVIEW = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "synthhuman"
    / "preview"
    / "SynthHuman-F.jpg"
)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models by key: '<task>', '<task>-fixed', '<task>-analytic', '<task>-analytic-fixed2', ..."""
    root = tmp_path_factory.mktemp("models")
    built = {}
    for task in ("depth", "normal", "foreground", "multitask"):
        built[task] = build_tiny_model(root / f"{task}.onnx", task)
        built[f"{task}-fixed"] = build_tiny_model(
            root / f"{task}-fixed.onnx", task, dynamic_batch=False
        )
        built[f"{task}-analytic"] = build_tiny_model(
            root / f"{task}-analytic.onnx", task, analytic=True
        )
    built["multitask-analytic-fixed2"] = build_tiny_model(
        root / "mt-analytic-fixed2.onnx",
        "multitask",
        analytic=True,
        dynamic_batch=False,
        batch_size=2,
    )
    built["multitask-fixed2"] = build_tiny_model(
        root / "mt-fixed2.onnx",
        "multitask",
        dynamic_batch=False,
        batch_size=2,
        input_name="pixel_values",
    )
    built["depth-c1"] = build_tiny_model(root / "depth-c1.onnx", "depth", depth_channel_axis=True)
    return built


@pytest.fixture(scope="session")
def real_tiles() -> list[np.ndarray]:
    """Six 512 x 384 BGR uint8 renders cut from the SynthHuman preview grid.

    Without ../shared, smooth synthetic images with edges stand in (the tests never require it).
    """
    grid = cv2.imread(str(PREVIEW), cv2.IMREAD_COLOR) if PREVIEW.is_file() else None
    if grid is not None and grid.shape[0] >= 1024 and grid.shape[1] >= 3 * 384:
        tile_w = grid.shape[1] // 3
        return [
            np.ascontiguousarray(grid[r * 512 : r * 512 + 512, c * tile_w : c * tile_w + 384])
            for r in range(2)
            for c in range(3)
        ]
    rng = np.random.default_rng(7)
    tiles = []
    for _ in range(6):
        noise = rng.random((512, 384, 3)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), 6)
        smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-6)
        smooth[200:320, 100:260] = rng.random(3)  # a hard-edged block
        tiles.append((smooth * 255).astype(np.uint8))
    return tiles
