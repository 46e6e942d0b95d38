"""A source as a list of parts (:class:`Source`), and what every kind of part shares
(:class:`PartSource`): a part lists its members once, and :meth:`PartSource.locate` turns
sample ids into plain :class:`~.parts.SampleMembers` that the reader of its kind reads
(:mod:`.zip`, :mod:`.folder`, :mod:`.http`).

Sample ids come from member names (``rgb_0001234.png`` -> 1234), never from the part's
name: which ids a part holds is only known once its directory has been read.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import ConfigError
from .parts import Member, PartRef, RawFiles, SampleMembers, ZipMember

if TYPE_CHECKING:
    from ..catalog.member import MemberTask

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PartSource(ABC):
    """One part, of one kind: a zip (:class:`~.zip.ZipPart`), an extracted folder standing
    for all its loose files (:class:`~.folder.FolderPart`) or a zip on a data host
    (:class:`~.http.RemotePart`). Listing, locating and fingerprinting are shared; each
    kind lists its entries and reads its samples its own way."""

    name: str
    """The part's file name (``SynthHuman_0003.zip``) or the extracted folder's name."""
    url: str
    fs: AbstractFileSystem | None = field(default=None, repr=False)
    """None for a part on an HTTP host (read through :mod:`david_data.catalog`)."""
    path: str
    size: int = 0
    recorded_sha256: str | None = None
    """The part's identity known without reading it whole: the SHA-256 from the mirror's
    ``manifest.json`` when it lists this part at this size; for a part on an HTTP host,
    its version there (set when its catalog is loaded)."""
    _members: dict[int, dict[str, Member]] | None = field(default=None, repr=False)

    kind: ClassVar[str]
    """Which reader reads it (:attr:`PartRef.kind`)."""
    is_zip: ClassVar[bool]

    @abstractmethod
    def _entries(self) -> Iterable[tuple[str, Member]]:
        """``(member name, locator)`` of every file of the part."""

    @abstractmethod
    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        """Yield ``(sample_id, files)`` for the given ids, in ascending id order."""

    @abstractmethod
    def sha256(self) -> str | None:
        """The part's identity recorded in each row's ``part_sha256`` (None: none)."""

    def _size_of(self, path: str) -> int | None:
        """The size of a loose file the part lists (None: unknown)."""
        return None

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
                    size = self._size_of(loc)
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
        return PartRef(name=self.name, url=self.url, kind=self.kind, size=self.size, sha256=sha256)

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
