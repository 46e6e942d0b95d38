"""Parts on a disk or an object store: a mirror of part zips, one zip, an extracted folder.

:func:`open_local_source` makes a :class:`Source` of :class:`PartSource` parts; a part
lists its members once (:meth:`PartSource.locate` turns sample ids into plain
:class:`~.parts.SampleMembers`) and is read by the reader of its kind (:mod:`.zip`,
:mod:`.folder`). Parts on a data host are :class:`~.http.RemotePart`, a subclass.

Sample ids come from member names (``rgb_0001234.png`` -> 1234), never from the part's
name: which ids a part holds is only known once its directory has been read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import ConfigError
from ..fsutil import join, resolve, to_url
from .folder import read_folder
from .parts import Member, PartRef, RawFiles, SampleMembers, ZipMember
from .zip import list_members, read_zip

if TYPE_CHECKING:
    from ..catalog.member import MemberTask

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PartSource:
    """One part: a zip, or an extracted folder standing for all its loose files."""

    name: str
    """The part's file name (``SynthHuman_0003.zip``) or the extracted folder's name."""
    url: str
    fs: AbstractFileSystem | None = field(default=None, repr=False)
    """None for a part on an HTTP host (read through :mod:`david_data.catalog`)."""
    path: str
    is_zip: bool
    size: int = 0
    recorded_sha256: str | None = None
    """The part's identity known without reading it whole: the SHA-256 from the mirror's
    ``manifest.json`` when it lists this part at this size; for a part on an HTTP host,
    its version there (set when its catalog is loaded)."""
    _members: dict[int, dict[str, Member]] | None = field(default=None, repr=False)
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)
    """Sizes of loose files by path (an extracted folder)."""

    def _entries(self) -> Iterable[tuple[str, Member]]:
        """``(member name, locator)`` of every file of the part."""
        assert self.fs is not None
        if self.is_zip:
            return ((m.name, m) for m in list_members(self.fs, self.path))
        found = self.fs.find(self.path, detail=True)
        self._sizes = {p: int(info.get("size") or 0) for p, info in found.items()}
        return ((p, p) for p in sorted(found))

    def _index(self) -> dict[int, dict[str, Member]]:
        """Members by sample id and kind. Raises VerificationError for an unreadable zip."""
        if self._members is None:
            index: dict[int, dict[str, Member]] = {}
            for name, locator in self._entries():
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

    def load(self) -> None:
        """Read the part's directory now (VerificationError for an unreadable zip)."""
        self._index()

    @property
    def sample_ids(self) -> list[int]:
        """Ids of the samples with at least one member in this part, ascending."""
        return sorted(self._index())

    def member_names(self, sample_id: int) -> dict[str, str]:
        """Member names present for one sample, by kind."""
        found = self._index().get(sample_id, {})
        return {kind: (loc if isinstance(loc, str) else loc.name) for kind, loc in found.items()}

    def member_rows(self) -> Iterator[dict[str, Any]]:
        """One row per member as the sample catalog lists them (``sample_id``, ``kind``,
        ``member``, ``compressed_size``, ``size``, ``crc32``, ``method``, ``offset``),
        None where a loose file does not tell."""
        for sid, kinds in sorted(self._index().items()):
            for kind, loc in sorted(kinds.items()):
                if isinstance(loc, str):
                    size = self._sizes.get(loc)
                    yield {
                        "sample_id": sid,
                        "kind": kind,
                        "member": loc,
                        "size": size,
                        "compressed_size": size,
                        "crc32": None,
                        "method": None,
                        "offset": None,
                    }
                else:
                    yield {"sample_id": sid, "kind": kind, "member": loc.name, **_zip_fields(loc)}

    def content_key(self, sample_id: int) -> tuple[tuple[str, int, int], ...] | None:
        """``(kind, CRC-32, size)`` of a sample's zip members: equal keys, equal content
        (None for loose files, whose content is only known by reading them)."""
        found = self._index().get(sample_id, {})
        if not self.is_zip:
            return None
        keys = []
        for kind, loc in found.items():
            if not isinstance(loc, str):
                fields = _zip_fields(loc)
                keys.append((kind, fields["crc32"], fields["size"]))
        return tuple(sorted(keys))

    def locate(self, sample_ids: Iterable[int]) -> list[SampleMembers]:
        """Where the given samples' files are (an id the part lacks gets no members)."""
        index = self._index()
        return [
            SampleMembers(sample_id=sid, members=tuple(sorted(index.get(sid, {}).items())))
            for sid in sorted(set(sample_ids))
        ]

    @property
    def kind(self) -> str:
        """Which reader reads it (:attr:`PartRef.kind`)."""
        return "zip" if self.is_zip else "folder"

    def ref(self, sha256: str | None = None) -> PartRef:
        return PartRef(name=self.name, url=self.url, kind=self.kind, size=self.size, sha256=sha256)

    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        """Yield ``(sample_id, files)`` for the given ids, in ascending id order."""
        located = self.locate(sample_ids)
        read = read_zip if self.is_zip else read_folder
        yield from read(self.ref(), located, fs=self.fs)

    def sha256(self) -> str | None:
        """SHA-256 of the part zip, streamed in 8 MiB blocks (None for a folder)."""
        if not self.is_zip:
            return None
        if self.recorded_sha256:
            return self.recorded_sha256
        assert self.fs is not None
        digest = hashlib.sha256()
        with self.fs.open(self.path, "rb", block_size=8 << 20) as handle:
            while block := handle.read(8 << 20):
                digest.update(block)
        return digest.hexdigest()

    def fingerprint(self) -> str:
        """Size plus modification time or ETag: changes when the zip is replaced."""
        assert self.fs is not None
        info = self.fs.info(self.path)
        stamp = info.get("mtime") or info.get("etag") or info.get("last_modified") or ""
        return f"{info.get('size')}:{stamp}"


@dataclass(kw_only=True)
class Source:
    """A mirror folder, one zip or an extracted folder, as a list of parts."""

    url: str
    parts: list[PartSource]
    kind: str
    """``mirror``, ``zip``, ``extracted`` or ``http`` (parts on a data host)."""

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


def _zip_fields(member: ZipMember | MemberTask) -> dict[str, int]:
    if isinstance(member, ZipMember):
        return {
            "compressed_size": member.compressed_size,
            "size": member.size,
            "crc32": member.crc,
            "method": member.method,
            "offset": member.offset,
        }
    return {
        "compressed_size": member.compressed_size,
        "size": member.size,
        "crc32": member.crc32,
        "method": member.method,
        "offset": member.offset,
    }


def open_local_source(url: str, storage_options: dict[str, Any] | None = None) -> Source:
    """Open a mirror folder, a part zip or an extracted ``SynthHuman/`` folder (local or
    fsspec URL)."""
    fs, path = resolve(url, storage_options)
    if not fs.exists(path):
        raise ConfigError(
            f"source {url} does not exist; give a mirror folder ('david-data mirror DEST' "
            "makes one), a part zip or an extracted SynthHuman/ folder"
        )
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
