"""Read members straight out of a zip (local or any fsspec URL) without extracting it.

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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

from fsspec import AbstractFileSystem

from ..errors import SampleDecodeError, VerificationError, ZipFormatError
from ..zipformat import MemberReader, ZipEntry, coalesce_spans, read_layout, record_ends

_MAX_GAP = 1 << 20
"""Members closer than this are fetched in one read (skipping the gap costs less)."""
_MAX_WINDOW = 256 << 20
"""Upper bound of one read window, to keep memory flat (one larger member excepted)."""


@dataclass(frozen=True, kw_only=True)
class ZipMember(ZipEntry):
    """One entry of a zip's central directory, with the end of its record."""

    end_offset: int
    """Its local header, data and any data descriptor lie in ``[offset, end_offset)``."""


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
