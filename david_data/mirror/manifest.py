"""The mirror manifest: ``DEST/manifest.json``, the record of every verified part.

A part is entered only after it was verified and promoted to its final name, so the
manifest is the commit marker of the mirror. It is rewritten atomically after each
part (read, merge, write under a process lock; the destination lock keeps other
processes out). Sample ids are stored as compact ranges (``"5000-9999"``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from fsspec import AbstractFileSystem

from ..errors import VerificationError
from ..fsutil import atomic_write_bytes, join

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class PartRecord:
    """What the mirror knows about one verified part."""

    name: str
    url: str
    size: int
    etag: str | None
    last_modified: str | None
    content_md5: str | None
    sha256: str
    member_count: int
    sample_ids: str
    """Compact ranges, e.g. ``"0-4999"``."""
    scenario_counts: dict[str, int]
    verified_at: str
    extracted: bool = False


@dataclass(frozen=True, kw_only=True)
class Manifest:
    parts: dict[str, PartRecord] = field(default_factory=dict)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def compact_ranges(ids: list[int] | tuple[int, ...]) -> str:
    """``[0, 1, 2, 7]`` -> ``"0-2,7"``."""
    out: list[str] = []
    values = sorted(set(ids))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(out)


def expand_ranges(text: str) -> list[int]:
    """Inverse of :func:`compact_ranges`."""
    ids: list[int] = []
    for item in filter(None, text.split(",")):
        lo, _, hi = item.partition("-")
        ids.extend(range(int(lo), int(hi or lo) + 1))
    return ids


def manifest_path(dest: str) -> str:
    return join(dest, MANIFEST_NAME)


def load_manifest(fs: AbstractFileSystem, dest: str) -> Manifest:
    """Read ``DEST/manifest.json``; an empty manifest when there is none yet."""
    path = manifest_path(dest)
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return Manifest()
    try:
        data: dict[str, Any] = json.loads(raw)
        parts = {name: PartRecord(**record) for name, record in data["parts"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(
            f"{path} is not a readable mirror manifest ({exc}); move it away and rerun "
            "'david-data mirror' to re-verify the parts and rebuild it",
            path=path,
        ) from exc
    return Manifest(parts=parts)


def record_parts(fs: AbstractFileSystem, dest: str, records: list[PartRecord]) -> Manifest:
    """Merge ``records`` into the manifest and write it atomically."""
    with _lock:
        current = load_manifest(fs, dest)
        parts = dict(current.parts)
        for record in records:
            parts[record.name] = record
        data = {
            "version": MANIFEST_VERSION,
            "updated_at": now_iso(),
            "parts": {name: asdict(parts[name]) for name in sorted(parts)},
        }
        atomic_write_bytes(fs, manifest_path(dest), json.dumps(data, indent=1).encode() + b"\n")
        return Manifest(parts=parts)
