"""Where SynthHuman samples come from: a mirror of part zips, one zip, or an extracted folder.

``open_source(url)`` accepts

- a folder (local or fsspec URL) holding ``SynthHuman_NNNN.zip`` / ``SynthHuman_sample.zip``
  parts, as ``david-data mirror`` leaves them: members are read straight out of the zips;
- one part zip;
- an extracted ``SynthHuman/`` folder (or its parent), members as loose files, in any
  sub-folders.

Sample ids come from member names (``rgb_0001234.png`` -> 1234), never from the part's
name: which ids a part holds is only known once its directory has been read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import ConfigError, SampleDecodeError
from ..fsutil import join, resolve, to_url
from .zipread import ZipMember, list_members, read_members

logger = logging.getLogger(__name__)

RawFiles = dict[str, "bytes | SampleDecodeError | None"]
"""One sample's files by kind (``rgb``, ``alpha``, ``depth``, ``normal``, ``cam``):
bytes, the error met reading them, or None when the member is missing."""


@dataclass(kw_only=True)
class PartSource:
    """One part: a zip, or an extracted folder standing for all its loose files."""

    name: str
    """The part's file name (``SynthHuman_0003.zip``) or the extracted folder's name."""
    url: str
    fs: AbstractFileSystem = field(repr=False)
    path: str
    is_zip: bool
    size: int = 0
    recorded_sha256: str | None = None
    """SHA-256 from the mirror's ``manifest.json``, when it lists this part at this size."""
    _members: dict[int, dict[str, Any]] | None = field(default=None, repr=False)

    def _index(self) -> dict[int, dict[str, Any]]:
        if self._members is None:
            index: dict[int, dict[str, Any]] = {}
            if self.is_zip:
                entries: Iterable[tuple[str, Any]] = (
                    (m.name, m) for m in list_members(self.fs, self.path)
                )
            else:
                entries = ((p, p) for p in self.fs.find(self.path))
            for name, locator in entries:
                ref = facts.parse_member_name(name)
                if ref is None:
                    continue
                kinds = index.setdefault(ref.sample_id, {})
                if ref.kind in kinds:
                    logger.warning("%s: %s appears twice; using the first", self.url, name)
                    continue
                kinds[ref.kind] = locator
            self._members = index
        return self._members

    @property
    def sample_ids(self) -> list[int]:
        """Ids of the samples with at least one member in this part, ascending."""
        return sorted(self._index())

    def member_names(self, sample_id: int) -> dict[str, str]:
        """Member names present for one sample, by kind."""
        found = self._index().get(sample_id, {})
        return {
            kind: (loc.name if isinstance(loc, ZipMember) else loc) for kind, loc in found.items()
        }

    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        """Yield ``(sample_id, files)`` for the given ids, in ascending id order.

        Zip members are fetched in a few large ranged reads (see :mod:`.zipread`).
        """
        ids = sorted(set(sample_ids))
        index = self._index()
        if not self.is_zip:
            for sid in ids:
                found = index.get(sid, {})
                files: RawFiles = {kind: None for kind in facts.FILE_KINDS}
                for kind, p in found.items():
                    try:
                        files[kind] = self.fs.cat_file(p)
                    except OSError as exc:
                        files[kind] = SampleDecodeError(f"{p}: cannot read ({exc})", path=p)
                yield sid, files
            return
        wanted: dict[str, tuple[int, str]] = {}
        for sid in ids:
            for kind, member in index.get(sid, {}).items():
                wanted[member.name] = (sid, kind)
        got: dict[int, RawFiles] = {sid: {kind: None for kind in facts.FILE_KINDS} for sid in ids}
        members = [index[sid][kind] for sid, kind in wanted.values()]
        for member, data in read_members(self.fs, self.path, self.size, members):
            sid, kind = wanted[member.name]
            got[sid][kind] = data
        for sid in ids:
            yield sid, got[sid]

    def sha256(self) -> str | None:
        """SHA-256 of the part zip, streamed in 8 MiB blocks (None for a folder)."""
        if not self.is_zip:
            return None
        if self.recorded_sha256:
            return self.recorded_sha256
        digest = hashlib.sha256()
        with self.fs.open(self.path, "rb", block_size=8 << 20) as handle:
            while block := handle.read(8 << 20):
                digest.update(block)
        return digest.hexdigest()

    def fingerprint(self) -> str:
        """Size plus modification time or ETag: changes when the zip is replaced."""
        info = self.fs.info(self.path)
        stamp = info.get("mtime") or info.get("etag") or info.get("last_modified") or ""
        return f"{info.get('size')}:{stamp}"


@dataclass(kw_only=True)
class Source:
    """A mirror folder, one zip or an extracted folder, as a list of parts."""

    url: str
    parts: list[PartSource]
    kind: str
    """``mirror``, ``zip`` or ``extracted``."""

    def part(self, name: str) -> PartSource:
        for p in self.parts:
            if p.name == name:
                return p
        raise ConfigError(
            f"{self.url} has no part {name}; it holds {', '.join(p.name for p in self.parts) or 'nothing'}"
        )

    def select(self, part_names: Iterable[str] | None) -> list[PartSource]:
        """The parts named (all when None); a part absent from the source is an error."""
        if part_names is None:
            return list(self.parts)
        chosen = list(part_names)
        missing = [n for n in chosen if n not in {p.name for p in self.parts}]
        if missing:
            raise ConfigError(
                f"{self.url} lacks {', '.join(missing)}; mirror them first "
                "('david-data mirror') or pick other parts with --parts"
            )
        return [p for p in self.parts if p.name in set(chosen)]

    def find(self, sample_id: int) -> PartSource:
        """The part holding ``sample_id`` (reads part directories as needed)."""
        expected = [p for p in self.parts if _may_hold(p.name, sample_id)]
        for p in expected + [p for p in self.parts if p not in expected]:
            if sample_id in p._index():
                return p
        raise ConfigError(f"sample {sample_id} is in no part of {self.url}")

    def read_sample(self, sample_id: int) -> RawFiles:
        """The raw files of one sample, by kind."""
        part = self.find(sample_id)
        return next(iter(part.read_samples([sample_id])))[1]


def _may_hold(name: str, sample_id: int) -> bool:
    expected = facts.expected_sample_ids(name)
    return expected is not None and sample_id in expected


def _apply_manifest(fs: AbstractFileSystem, folder: str, parts: list[PartSource]) -> None:
    """Take part checksums from the mirror manifest (saves rereading whole parts)."""
    try:
        records = json.loads(fs.cat_file(join(folder, "manifest.json")))["parts"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return
    for part in parts:
        record = records.get(part.name) if isinstance(records, dict) else None
        if isinstance(record, dict) and record.get("size") == part.size and record.get("sha256"):
            part.recorded_sha256 = str(record["sha256"])


def open_source(url: str, storage_options: dict[str, Any] | None = None) -> Source:
    """Open a mirror folder, a part zip or an extracted ``SynthHuman/`` folder."""
    fs, path = resolve(url, storage_options)
    if not fs.exists(path):
        raise ConfigError(f"source {url} does not exist")
    if fs.isfile(path):
        if not path.lower().endswith(".zip"):
            raise ConfigError(f"source {url} is a file but not a zip; give a part zip or a folder")
        size = int(fs.size(path))
        part = PartSource(
            name=path.rsplit("/", 1)[-1],
            url=to_url(fs, path),
            fs=fs,
            path=path,
            is_zip=True,
            size=size,
        )
        return Source(url=url, parts=[part], kind="zip")
    entries = fs.ls(path, detail=True)
    zips = sorted(
        (e for e in entries if e["type"] == "file" and facts.is_part_name(e["name"])),
        key=lambda e: e["name"],
    )
    if zips:
        parts = [
            PartSource(
                name=e["name"].rsplit("/", 1)[-1],
                url=to_url(fs, e["name"]),
                fs=fs,
                path=e["name"],
                is_zip=True,
                size=int(e["size"]),
            )
            for e in zips
        ]
        _apply_manifest(fs, path, parts)
        return Source(url=url, parts=parts, kind="mirror")
    folder = path
    names = {e["name"].rstrip("/").rsplit("/", 1)[-1]: e for e in entries}
    if facts.EXTRACT_FOLDER in names and names[facts.EXTRACT_FOLDER]["type"] == "directory":
        folder = join(path, facts.EXTRACT_FOLDER)
    part = PartSource(
        name=folder.rsplit("/", 1)[-1], url=to_url(fs, folder), fs=fs, path=folder, is_zip=False
    )
    if not part.sample_ids:
        raise ConfigError(
            f"{url} holds neither SynthHuman part zips nor sample files (rgb_0000000.png ...); "
            "give a mirror folder, a part zip or an extracted SynthHuman/ folder"
        )
    return Source(url=url, parts=[part], kind="extracted")
