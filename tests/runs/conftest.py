"""A small store (two shards of 4 samples and a partial one) and tiny models, per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from david_data.convert.run import convert
from david_data.infer.testmodels import build_tiny_model
from david_data.synth import write_part

SHARD = 4
IDS = list(range(0, 10))
"""Samples of the store: shards 0 and 1 full, shard 2 half."""


@pytest.fixture(scope="session")
def runs_base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store nobody changes: tests copy it (``run_store``)."""
    root = tmp_path_factory.mktemp("runs-store")
    write_part(root / "src" / "SynthHuman_0000.zip", IDS)
    path = root / "store.zarr"
    report = convert(str(root / "src"), str(path), shard_size=SHARD, workers=1)
    assert report.ok, report.summary()
    return path


@pytest.fixture()
def run_store(runs_base_store: Path, tmp_path: Path) -> Path:
    """A copy of the store a test may write runs into."""
    path = tmp_path / "store.zarr"
    shutil.copytree(runs_base_store, path)
    return path


@pytest.fixture(scope="session")
def run_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny multitask models: ``a`` and ``b`` differ in their weights; ``depth``."""
    root = tmp_path_factory.mktemp("run-models")
    return {
        "a": build_tiny_model(root / "tiny-a.onnx", "multitask", seed=0),
        "b": build_tiny_model(root / "tiny-b.onnx", "multitask", seed=1),
        "depth": build_tiny_model(root / "tiny-depth.onnx", "depth", seed=2),
    }
