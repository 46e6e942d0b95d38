"""Fixtures for the catalog and fetch tests: small synthetic parts that straddle the
scenario boundaries (served by the `host` fixture of tests/conftest.py), and a private
catalog cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import PARTS

from david_data.synth.generator import write_part


@pytest.fixture(scope="session")
def source_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parts of :data:`PARTS` (15 samples, ~7 MB), generated once per session."""
    root = tmp_path_factory.mktemp("catalog-parts")
    for name, (ids, options) in PARTS.items():
        write_part(root / name, ids, options)
    return root


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh catalog cache for each test (also seen by CLI subprocesses)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(folder))
    return folder
