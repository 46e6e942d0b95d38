"""Fixtures for the mirror tests: tiny synthetic parts (served by the `host` fixture of
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mirror_helpers import PARTS, SAMPLES_PER_PART

from david_data.synth.generator import write_parts


@pytest.fixture(scope="session")
def source_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parts 0-3, two samples each (~1.2 MB a part), generated once per session."""
    root = tmp_path_factory.mktemp("parts")
    write_parts(root, list(PARTS), SAMPLES_PER_PART)
    return root
