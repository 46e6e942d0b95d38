"""Where SynthHuman samples come from: a mirror of part zips, one zip, an extracted
folder, or the data host itself.

``open_source(url)`` accepts

- a folder (local or fsspec URL) holding ``SynthHuman_NNNN.zip`` / ``SynthHuman_sample.zip``
  parts, as ``david-data mirror`` leaves them: members are read straight out of the zips;
- one part zip;
- an extracted ``SynthHuman/`` folder (or its parent), members as loose files, in any
  sub-folders;
- an ``http(s)://`` base URL of the parts (or of one part zip): members are known from the
  sample catalog and read by verified ranged requests, with no local copy
  (:mod:`david_data.catalog.remote_source`).

Sample ids come from member names (``rgb_0001234.png`` -> 1234), never from the part's
name: which ids a part holds is only known once its directory has been read.

Reading is split so that a worker never re-lists a part: :meth:`PartSource.locate` turns
sample ids into plain, picklable :class:`SampleMembers` (zip directory entries or file
paths) and :func:`read_files` reads them given only a :class:`PartRef`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import ConfigError, SampleDecodeError
from ..fsutil import join, resolve, to_url
from .zipread import ZipMember, list_members, read_members

if TYPE_CHECKING:
    from ..catalog.member import MemberTask
    from ..mirror.retry import RetryPolicy

logger = logging.getLogger(__name__)

RawFiles = dict[str, "bytes | SampleDecodeError | None"]
"""One sample's files by kind (``rgb``, ``alpha``, ``depth``, ``normal``, ``cam``):
bytes, the error met reading them, or None when the member is missing."""

Member: TypeAlias = "ZipMember | MemberTask | str"
"""Where one file of a sample is: a zip directory entry, a catalogued member of a part on
an HTTP host, or a loose file's path."""


def is_http(url: str) -> bool:
    """True for an ``http(s)://`` URL (a part or the parts' base on a data host)."""
    return url.lower().startswith(("http://", "https://"))


@dataclass(frozen=True, kw_only=True)
class PartRef:
    """Enough to read a part in another process or on another machine (absolute URL)."""

    name: str
    url: str
    is_zip: bool
    size: int
    sha256: str | None = None
    """The part's identity recorded in each row's ``part_sha256``: its SHA-256, or for a
    part read from an HTTP host its version there (see :mod:`david_data.catalog.remote_source`)."""
    version: str | None = None
    """ETag of a part on an HTTP host: every ranged read carries it in ``If-Match``."""
    policy: RetryPolicy | None = None
    """Retries of ranged reads from an HTTP host (None: the default policy)."""


@dataclass(frozen=True, kw_only=True)
class SampleMembers:
    """Where one sample's files are inside its part, by kind."""

    sample_id: int
    members: tuple[tuple[str, Member], ...]


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

    def ref(self, sha256: str | None = None) -> PartRef:
        return PartRef(
            name=self.name, url=self.url, is_zip=self.is_zip, size=self.size, sha256=sha256
        )

    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        """Yield ``(sample_id, files)`` for the given ids, in ascending id order."""
        located = self.locate(sample_ids)  # first: a part on a host learns its size and ETag
        yield from read_files(self.ref(), located, fs=self.fs)

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


def read_files(
    part: PartRef,
    samples: Sequence[SampleMembers],
    *,
    fs: AbstractFileSystem | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[int, RawFiles]]:
    """Yield ``(sample_id, files)`` for located samples of ``part``, in the given order.

    Zip members are fetched in a few large ranged reads and checked against their CRC-32
    (see :mod:`.zipread`; from an HTTP host, :func:`david_data.catalog.remote_source.read_remote`);
    a file that cannot be read yields its error instead of bytes.
    """
    if is_http(part.url):
        from ..catalog.remote_source import read_remote

        yield from read_remote(part, samples)
        return
    if fs is None:
        fs, path = resolve(part.url, storage_options)
    else:
        path = fs._strip_protocol(part.url)
    if not part.is_zip:
        for sample in samples:
            files: RawFiles = dict.fromkeys(facts.FILE_KINDS)
            for kind, p in sample.members:
                try:
                    files[kind] = fs.cat_file(str(p))
                except OSError as exc:
                    files[kind] = SampleDecodeError(f"{p}: cannot read ({exc})", path=p)
            yield sample.sample_id, files
        return
    got: dict[int, RawFiles] = {s.sample_id: dict.fromkeys(facts.FILE_KINDS) for s in samples}
    wanted: dict[str, tuple[int, str]] = {}
    members: list[ZipMember] = []
    for sample in samples:
        for kind, member in sample.members:
            assert isinstance(member, ZipMember)
            wanted[member.name] = (sample.sample_id, kind)
            members.append(member)
    for member, data in read_members(fs, path, part.size, members):
        sid, kind = wanted[member.name]
        got[sid][kind] = data
    for sample in samples:
        yield sample.sample_id, got[sample.sample_id]


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


def open_source(
    url: str, storage_options: dict[str, Any] | None = None, *, policy: RetryPolicy | None = None
) -> Source:
    """Open a mirror folder, a part zip, an extracted ``SynthHuman/`` folder, or the parts
    on an HTTP host (``policy``: retries of its requests)."""
    if is_http(url):
        from ..catalog.remote_source import open_remote_source

        return open_remote_source(url, policy=policy)
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
