"""Fixtures for the runtime tests: tiny ONNX models and real-pixel test images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from david_data.infer.testmodels import build_tiny_model

# Real renders shipped in the package (cut from the SynthHuman preview grids), so the
# tests need nothing beside the repository.
TILES = Path(__file__).resolve().parents[2] / "david_data" / "synth" / "assets"


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
    """Six 512 x 384 BGR uint8 renders (two per scenario) from ``david_data/synth/assets``."""
    files = [TILES / f"{scenario}_{i}.png" for scenario in ("face", "full_body", "upper_body") for i in (0, 1)]
    tiles = [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files]
    assert all(t is not None and t.shape == (512, 384, 3) for t in tiles), f"tiles missing under {TILES}"
    return tiles
