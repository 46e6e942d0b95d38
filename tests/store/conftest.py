"""A tiny mirror and its stores (new layout, old layout), converted once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from store_helpers import PARTS, SHARD, move_index_to_end

from david_data.convert.run import convert
from david_data.synth import write_part


@pytest.fixture(scope="session")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store-mirror")
    for name, (ids, options) in PARTS.items():
        write_part(root / name, ids, options)
    return root


@pytest.fixture(scope="session")
def store(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast-profile store of the whole mirror. Tests must not change it (copy it first)."""
    path = tmp_path_factory.mktemp("store") / "store.zarr"
    report = convert(str(mirror), str(path), shard_size=SHARD, workers=1)
    assert report.ok, report.summary()
    return path


@pytest.fixture(scope="session")
def old_store(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same store in the layout written before: shard index at the end."""
    path = tmp_path_factory.mktemp("old-store") / "store.zarr"
    shutil.copytree(store, path)
    move_index_to_end(path)
    return path


@pytest.fixture()
def store_copy(store: Path, tmp_path: Path) -> Path:
    """A copy of the store that a test may damage."""
    path = tmp_path / "store.zarr"
    shutil.copytree(store, path)
    return path
