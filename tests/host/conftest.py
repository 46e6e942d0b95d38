"""Fixtures for the local host tests: a folder of random 'parts' served on loopback."""

from __future__ import annotations

import http.client
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_helpers import PART_A, PART_B

from david_data.synth.host import LocalHost


@pytest.fixture()
def served(tmp_path: Path) -> dict[str, bytes]:
    """Two parts of random bytes (deterministic) in tmp_path; name -> content."""
    rng = random.Random(7)
    files = {PART_A: rng.randbytes(1_000_003), PART_B: rng.randbytes(300_000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.bin").write_bytes(b"inner")
    return files


@pytest.fixture()
def host(tmp_path: Path, served: dict[str, bytes]) -> Iterator[LocalHost]:
    with LocalHost(tmp_path) as h:
        yield h


@pytest.fixture()
def conn(host: LocalHost) -> Iterator[http.client.HTTPConnection]:
    c = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    yield c
    c.close()
