"""Synthetic mirrors for the conversion tests (tiny: a few samples per part)."""

from __future__ import annotations

from pathlib import Path

import pytest
from convert_helpers import MIRROR_PARTS, SHARD, Mirror

from david_data.convert.run import convert
from david_data.synth import write_part


@pytest.fixture(scope="session")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Mirror:
    root = tmp_path_factory.mktemp("mirror")
    for name, (ids, options) in MIRROR_PARTS.items():
        write_part(root / name, ids, options)
    return Mirror(path=root, ids={n: list(ids) for n, (ids, _) in MIRROR_PARTS.items()})


@pytest.fixture(scope="session")
def store(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean conversion of the mirror (library path, one process)."""
    path = tmp_path_factory.mktemp("store") / "store.zarr"
    report = convert(str(mirror.path), str(path), shard_size=SHARD, workers=1)
    assert report.ok, report.summary()
    return path
