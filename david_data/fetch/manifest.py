"""``DEST/fetch-manifest.json``: the samples a fetch wrote, with their members' CRC-32s.

::

    {"format": 1, "source": "https://.../data/", "updated": "2025-...",
     "samples": {"123": {"part": "SynthHuman_0000.zip", "version": "\\"0x8...\\"",
                         "files": {"rgb_0000123.png": [size, crc32], ...}}}}

A sample is entered once all its files are on disk and verified; the file is rewritten
atomically. A run killed before it wrote the manifest loses nothing: the next run finds
the files, checks their CRC-32 against the catalog and enters them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import VerificationError
from ..fsutil import Files, atomic_write_bytes, join
from ..mirror.manifest import now_iso

MANIFEST_NAME = "fetch-manifest.json"
_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class SampleRecord:
    part: str
    version: str | None
    files: dict[str, tuple[int, int]]
    """File name -> (size, CRC-32)."""


@dataclass(kw_only=True)
class FetchManifest:
    source: str
    samples: dict[int, SampleRecord] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "format": _FORMAT,
            "source": self.source,
            "updated": now_iso(),
            "samples": {
                str(sid): {
                    "part": rec.part,
                    "version": rec.version,
                    "files": {name: list(v) for name, v in sorted(rec.files.items())},
                }
                for sid, rec in sorted(self.samples.items())
            },
        }
        return json.dumps(body, separators=(",", ":")).encode()


def load_fetch_manifest(fs: Files, root: str, source: str | None = None) -> FetchManifest:
    """The manifest at ``root`` (empty when there is none), with ``source`` as its source
    (None: the one it records, '?' when it records none)."""
    path = join(root, MANIFEST_NAME)
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return FetchManifest(source=source or "?")
    try:
        body = json.loads(raw)
        if body.get("format") != _FORMAT:
            raise ValueError(f"format {body.get('format')!r}")
        samples = {
            int(sid): SampleRecord(
                part=str(rec["part"]),
                version=rec.get("version"),
                files={str(n): (int(v[0]), int(v[1])) for n, v in rec["files"].items()},
            )
            for sid, rec in body["samples"].items()
        }
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise VerificationError(
            f"{path} is not a fetch manifest this version can read ({exc}); move it away and "
            "rerun: files already fetched are checked against the catalog and kept",
            path=path,
        ) from exc
    if source is None:
        source = str(body.get("source") or "?")
    return FetchManifest(source=source, samples=samples)


def save_fetch_manifest(fs: Files, root: str, manifest: FetchManifest) -> None:
    atomic_write_bytes(fs, join(root, MANIFEST_NAME), manifest.to_json())
