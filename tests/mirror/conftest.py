"""Fixtures for the mirror tests: tiny synthetic parts served by a real loopback host."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mirror_helpers import PARTS, SAMPLES_PER_PART

from david_data.synth.generator import write_parts
from david_data.synth.host import LocalHost


@pytest.fixture(scope="session")
def source_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parts 0-3, two samples each (~1.2 MB a part), generated once per session."""
    root = tmp_path_factory.mktemp("parts")
    write_parts(root, list(PARTS), SAMPLES_PER_PART)
    return root


@pytest.fixture()
def served(tmp_path: Path, source_parts: Path) -> Path:
    """A private copy of the parts (tests may corrupt or replace files in it)."""
    root = tmp_path / "served"
    shutil.copytree(source_parts, root)
    return root


@pytest.fixture()
def host(served: Path) -> Iterator[LocalHost]:
    with LocalHost(served) as running:
        yield running
