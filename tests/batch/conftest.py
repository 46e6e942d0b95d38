"""Fixtures for the batch inference tests: tiny ONNX models and small real images.

Images are 64 x 48 crops of the SynthHuman previews (real pixels), so 200 of them run
through a tiny model in a few seconds on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import write_images

from david_data.infer.testmodels import build_tiny_model


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models: multitask (dynamic batch), depth (fixed batch 1), foreground, analytic multitask."""
    root = tmp_path_factory.mktemp("models")
    return {
        "multitask": build_tiny_model(root / "multitask.onnx", "multitask"),
        "depth_fixed": build_tiny_model(root / "depth_fixed.onnx", "depth", dynamic_batch=False),
        "foreground": build_tiny_model(root / "foreground.onnx", "foreground", seed=1),
        "analytic": build_tiny_model(root / "analytic.onnx", "multitask", analytic=True),
    }


@pytest.fixture()
def image_folder(tmp_path: Path) -> tuple[Path, list[str]]:
    """A folder of 200 small real images in nested folders."""
    folder = tmp_path / "images"
    return folder, write_images(folder, 200)
