"""The mirror manifest: ``DEST/manifest.json``, the record of every verified part.

A part is entered only after it was verified and promoted to its final name, so the
manifest is the commit marker of the mirror. It is rewritten atomically after each
part (read, merge, write under a process lock; the destination lock keeps other
processes out). Sample ids are stored as compact ranges (``"5000-9999"``).

``david-data verify`` moves a part it finds damaged or missing from ``parts`` to
``suspect`` (with what it found), so the next ``david-data mirror`` fetches exactly
those parts again; recording the part anew clears the entry::

    {"version": 1, "updated_at": "...",
     "parts":   {"SynthHuman_0000.zip": {"size": ..., "sha256": ..., ...}},
     "suspect": {"SynthHuman_0001.zip": {"problem": "...", "found_at": "..."}}}
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._parse import parse_ranges
from ..errors import VerificationError
from ..facts import NUM_SAMPLES
from ..fsutil import Files, atomic_write_bytes, join

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
class Suspect:
    """A part that ``verify`` found damaged or missing: the next mirror fetches it again."""

    problem: str
    found_at: str


@dataclass(frozen=True, kw_only=True)
class Manifest:
    parts: dict[str, PartRecord] = field(default_factory=dict)
    suspect: dict[str, Suspect] = field(default_factory=dict)
    exists: bool = True
    """False when DEST holds no manifest.json yet."""


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
    """Inverse of :func:`compact_ranges` (read by the one parser of id lists)."""
    if not text:
        return []
    ranges = parse_ranges(
        text, stop=NUM_SAMPLES, what="manifest sample ids", unit="sample id", usage="'0-4999'"
    )
    return [i for lo, hi in ranges for i in range(lo, hi + 1)]


def manifest_path(dest: str) -> str:
    return join(dest, MANIFEST_NAME)


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "url": (str,),
    "size": (int,),
    "etag": (str, type(None)),
    "last_modified": (str, type(None)),
    "content_md5": (str, type(None)),
    "sha256": (str,),
    "member_count": (int,),
    "sample_ids": (str,),
    "scenario_counts": (dict,),
    "verified_at": (str,),
    "extracted": (bool,),
}
_REQUIRED = {f.name for f in dataclasses.fields(PartRecord) if f.default is dataclasses.MISSING}


def _bad(path: str, found: str) -> VerificationError:
    return VerificationError(
        f'{path} is not a mirror manifest (expected {{"parts": {{NAME: record}}}}, found '
        f"{found}); move it away and rerun 'david-data mirror' to re-verify the parts and "
        "rebuild it",
        path=path,
    )


def _record(path: str, name: str, raw: Any) -> PartRecord:
    if not isinstance(raw, dict):
        raise _bad(path, f"a {type(raw).__name__} as the record of {name}")
    missing = sorted(_REQUIRED - raw.keys())
    unknown = sorted(raw.keys() - _TYPES.keys())
    if missing or unknown:
        what = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise _bad(path, f"a record of {name} with {what}")
    for key, value in raw.items():
        if not isinstance(value, _TYPES[key]) or (key != "extracted" and isinstance(value, bool)):
            raise _bad(path, f"{key} = {value!r} in the record of {name}")
    if raw["name"] != name:
        raise _bad(path, f"the record of {name} naming {raw['name']!r}")
    return PartRecord(**raw)


def load_manifest(fs: Files, dest: str) -> Manifest:
    """Read ``DEST/manifest.json``; an empty manifest (``exists=False``) when there is none.

    Raises :class:`VerificationError` naming the file when it is not JSON or not shaped
    like a manifest."""
    path = manifest_path(dest)
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return Manifest(exists=False)
    except (IsADirectoryError, NotADirectoryError) as exc:
        raise _bad(path, "a folder") from exc
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(
            f"{path} is not valid JSON ({exc}); move it away and rerun 'david-data mirror' to "
            "re-verify the parts and rebuild it",
            path=path,
        ) from exc
    if not isinstance(data, dict):
        raise _bad(path, f"a JSON {type(data).__name__}")
    if not isinstance(data.get("parts"), dict):
        found = (
            'no "parts"'
            if "parts" not in data
            else f'a {type(data["parts"]).__name__} under "parts"'
        )
        raise _bad(path, found)
    suspect_raw = data.get("suspect", {})
    if not isinstance(suspect_raw, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("problem"), str) for v in suspect_raw.values()
    ):
        raise _bad(path, 'a malformed "suspect" entry')
    return Manifest(
        parts={name: _record(path, name, record) for name, record in data["parts"].items()},
        suspect={
            name: Suspect(problem=v["problem"], found_at=str(v.get("found_at", "")))
            for name, v in suspect_raw.items()
        },
    )


def _write(fs: Files, dest: str, manifest: Manifest) -> None:
    data: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "updated_at": now_iso(),
        "parts": {name: asdict(manifest.parts[name]) for name in sorted(manifest.parts)},
    }
    if manifest.suspect:
        data["suspect"] = {
            name: asdict(manifest.suspect[name]) for name in sorted(manifest.suspect)
        }
    atomic_write_bytes(fs, manifest_path(dest), json.dumps(data, indent=1).encode() + b"\n")


def record_parts(fs: Files, dest: str, records: list[PartRecord]) -> Manifest:
    """Merge ``records`` into the manifest (clearing their suspect entries) and write it
    atomically."""
    with _lock:
        current = load_manifest(fs, dest)
        parts = dict(current.parts)
        suspect = dict(current.suspect)
        for record in records:
            parts[record.name] = record
            suspect.pop(record.name, None)
        manifest = Manifest(parts=parts, suspect=suspect)
        _write(fs, dest, manifest)
        return manifest


def record_suspects(fs: Files, dest: str, found: dict[str, str]) -> Manifest:
    """Move the parts ``found`` names (name -> problem) from ``parts`` to ``suspect``."""
    with _lock:
        current = load_manifest(fs, dest)
        parts = {k: v for k, v in current.parts.items() if k not in found}
        suspect = dict(current.suspect)
        when = now_iso()
        for name, problem in found.items():
            suspect[name] = Suspect(problem=problem, found_at=when)
        manifest = Manifest(parts=parts, suspect=suspect)
        _write(fs, dest, manifest)
        return manifest
