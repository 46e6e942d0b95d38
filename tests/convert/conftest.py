"""Synthetic mirrors for the conversion tests (tiny: a few samples per part)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from convert_helpers import MIRROR_PARTS, SHARD, Mirror

from david_data.convert.run import convert
from david_data.synth import write_part
from david_data.synth.host import LocalHost


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


@pytest.fixture(scope="module")
def host(mirror: Mirror) -> Iterator[LocalHost]:
    """The mirror's parts on a loopback host, shared by the tests of a module."""
    with LocalHost(mirror.path) as running:
        yield running


@pytest.fixture(scope="module")
def catalog_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private catalog cache for a module (also seen by CLI subprocesses); a module
    that reads parts over HTTP uses it for all its tests (``pytest.mark.usefixtures``)."""
    folder = tmp_path_factory.mktemp("catalog-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAVID_DATA_CACHE_DIR", str(folder))
        yield folder
