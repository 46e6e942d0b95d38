"""The reader of a part zip (local or any fsspec URL): members read in place, never extracted.

The central directory is read once (:func:`david_data.zipformat.read_layout`: one read
of the end of the file, one of the directory). Member data is then fetched by byte
range: the members wanted together (one shard's samples) are sorted by offset and merged
into a few contiguous windows (:func:`david_data.zipformat.coalesce_spans`, as the
catalog's fetch does), each fetched with one read, and every member's record is checked
by the project's one member reader (:class:`david_data.zipformat.MemberReader`: local
header against the directory, inflate ending exactly at the compressed size, size,
CRC-32). Memory holds one window at a time, never the whole zip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import SampleDecodeError, VerificationError, ZipFormatError
from ..zipformat import MemberReader, ZipEntry, coalesce_spans, read_layout, record_ends
from .base import PartSource
from .parts import Member, PartRef, RawFiles, SampleMembers, ZipMember, part_fs

_MAX_GAP = 1 << 20
"""Members closer than this are fetched in one read (skipping the gap costs less)."""
_MAX_WINDOW = 256 << 20
"""Upper bound of one read window, to keep memory flat (one larger member excepted)."""


def list_members(fs: AbstractFileSystem, path: str) -> list[ZipMember]:
    """Read the central directory of the zip at ``path`` (directories left out), in
    offset order."""
    try:
        with fs.open(path, "rb", block_size=1 << 20) as handle:
            layout = read_layout(handle, int(handle.size))
    except (ZipFormatError, OSError) as exc:
        raise VerificationError(
            f"{path}: not a readable zip archive ({exc}); re-mirror the part "
            "('david-data mirror' verifies and repairs it)",
            path=path,
        ) from exc
    names = [f.name for f in fields(ZipEntry)]
    return [
        ZipMember(**{n: getattr(entry, n) for n in names}, end_offset=end)
        for entry, end in record_ends(layout)
        if not entry.is_dir
    ]


def read_members(
    fs: AbstractFileSystem, path: str, size: int, members: Iterable[ZipMember]
) -> Iterator[tuple[ZipMember, bytes | SampleDecodeError]]:
    """Yield ``(member, data)`` for each member, in offset order.

    A member whose bytes cannot be read back intact yields the error instead of data,
    so one damaged member never hides the others. ``size`` is the zip's size in bytes.
    """
    windows = coalesce_spans(
        members, lambda m: (m.offset, m.end_offset), max_gap=_MAX_GAP, max_bytes=_MAX_WINDOW
    )
    for start, end, group in windows:
        window = memoryview(fs.cat_file(path, start=start, end=min(end, size)))
        for member in group:
            reader = MemberReader(member, end=member.end_offset, keep=True)
            reader.feed(window[member.offset - start :])
            try:
                yield member, reader.content()
            except VerificationError as exc:
                yield (
                    member,
                    SampleDecodeError(
                        f"{path}:{exc.message}; the member is damaged: re-mirror the part "
                        "('david-data mirror' verifies and repairs it)",
                        path=member.name,
                    ),
                )


def read_zip(
    part: PartRef,
    samples: Sequence[SampleMembers],
    *,
    fs: AbstractFileSystem | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[int, RawFiles]]:
    """Yield ``(sample_id, files)`` for located samples of a part zip, in the given order,
    once all are read (:func:`read_members`); a damaged member yields its error."""
    fs, path = part_fs(part, fs, storage_options)
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
class ZipPart(PartSource):
    """A part zip on a disk or an object store: members listed from its central directory
    and read in place."""

    kind: ClassVar[str] = "zip"
    is_zip: ClassVar[bool] = True

    def _entries(self) -> Iterable[tuple[str, Member]]:
        assert self.fs is not None
        return ((m.name, m) for m in list_members(self.fs, self.path))

    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        located = self.locate(sample_ids)
        yield from read_zip(self.ref(), located, fs=self.fs)

    def sha256(self) -> str | None:
        """SHA-256 of the part zip, streamed in 8 MiB blocks (the manifest's when known)."""
        if self.recorded_sha256:
            return self.recorded_sha256
        assert self.fs is not None
        digest = hashlib.sha256()
        with self.fs.open(self.path, "rb", block_size=8 << 20) as handle:
            while block := handle.read(8 << 20):
                digest.update(block)
        return digest.hexdigest()
