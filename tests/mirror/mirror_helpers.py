"""Helpers shared by the mirror tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

from david_data.mirror import RetryPolicy

SAMPLES_PER_PART = 2
PARTS = tuple(f"SynthHuman_{i:04d}.zip" for i in range(4))
# Fast retries and a short stall timeout so fault tests take seconds.
FAST = RetryPolicy(base_delay=0.02, max_delay=0.2, stall_timeout=1.0, connect_timeout=5.0)
SEGMENT = 128 * 1024


def member_data_offset(path: Path, member: str) -> int:
    """Offset of the first data byte of ``member`` in the zip at ``path``."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        nlen = int.from_bytes(handle.read(2), "little")
        xlen = int.from_bytes(handle.read(2), "little")
    return info.header_offset + 30 + nlen + xlen


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def tail_size(path: Path) -> int:
    """Bytes from the central directory to the end of the zip at ``path``."""
    with zipfile.ZipFile(path) as archive:
        return path.stat().st_size - archive.start_dir  # type: ignore[attr-defined]
