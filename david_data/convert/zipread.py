"""Read members straight out of a zip (local or any fsspec URL) without extracting it.

The central directory is read once through :mod:`zipfile` (a few ranged reads at the
end of the file, ZIP64 included). Member data is then fetched by byte range: the
members wanted together (one shard's samples) are sorted by offset and merged into a
few contiguous windows, each fetched with one read, and every member is inflated and
checked against its CRC-32 from the central directory. Memory holds one window at a
time, never the whole zip.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fsspec import AbstractFileSystem

from ..errors import SampleDecodeError, VerificationError

try:  # ISA-L: the same CRC-32 as zlib's, ~4x faster here (as in mirror/zipcheck.py)
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - zlib gives identical results, slower
    from zlib import crc32

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_MAGIC = b"PK\x03\x04"
_MAX_GAP = 1 << 20
"""Members closer than this are fetched in one read (skipping the gap costs less)."""
_MAX_WINDOW = 256 << 20
"""Upper bound of one read window, to keep memory flat."""
_HEADER_SLACK = 30 + 1024
"""Room for a local header (fixed part + name + extra) ahead of each member's data."""


@dataclass(frozen=True, kw_only=True)
class ZipMember:
    """One entry of a zip's central directory."""

    name: str
    header_offset: int
    compress_size: int
    file_size: int
    compress_type: int
    crc: int


def list_members(fs: AbstractFileSystem, path: str) -> list[ZipMember]:
    """Read the central directory of the zip at ``path`` (directories left out)."""
    try:
        with fs.open(path, "rb", block_size=1 << 20) as handle, zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise VerificationError(
            f"{path}: not a readable zip archive ({exc}); re-mirror the part "
            "('david-data mirror' verifies and repairs it)",
            path=path,
        ) from exc
    return [
        ZipMember(
            name=i.filename,
            header_offset=i.header_offset,
            compress_size=i.compress_size,
            file_size=i.file_size,
            compress_type=i.compress_type,
            crc=i.CRC,
        )
        for i in infos
        if not i.is_dir()
    ]


def _windows(members: list[ZipMember]) -> Iterator[tuple[int, int, list[ZipMember]]]:
    ordered = sorted(members, key=lambda m: m.header_offset)
    start = end = -1
    group: list[ZipMember] = []
    for m in ordered:
        m_end = m.header_offset + _HEADER_SLACK + len(m.name) + m.compress_size
        if group and (m.header_offset - end > _MAX_GAP or m_end - start > _MAX_WINDOW):
            yield start, end, group
            group = []
        if not group:
            start = m.header_offset
            end = m_end
        end = max(end, m_end)
        group.append(m)
    if group:
        yield start, end, group


def _extract(window: memoryview, base: int, member: ZipMember, where: str) -> bytes:
    at = member.header_offset - base
    fixed = bytes(window[at : at + _LOCAL_HEADER.size])
    if len(fixed) < _LOCAL_HEADER.size:
        raise SampleDecodeError(
            f"{where}:{member.name}: zip member header is truncated", path=member.name
        )
    magic, *_, name_len, extra_len = _LOCAL_HEADER.unpack(fixed)
    if magic != _LOCAL_MAGIC:
        raise SampleDecodeError(
            f"{where}:{member.name}: no local file header at offset {member.header_offset}; "
            "the zip is damaged: re-mirror the part",
            path=member.name,
        )
    data_at = at + _LOCAL_HEADER.size + name_len + extra_len
    raw = bytes(window[data_at : data_at + member.compress_size])
    if len(raw) != member.compress_size:
        raise SampleDecodeError(
            f"{where}:{member.name}: member data is truncated", path=member.name
        )
    if member.compress_type == zipfile.ZIP_STORED:
        data = raw
    elif member.compress_type == zipfile.ZIP_DEFLATED:
        try:
            data = zlib.decompress(raw, -15)
        except zlib.error as exc:
            raise SampleDecodeError(
                f"{where}:{member.name}: cannot inflate ({exc})", path=member.name
            ) from exc
    else:
        raise SampleDecodeError(
            f"{where}:{member.name}: unsupported zip compression method {member.compress_type} "
            "(only stored and deflated are supported)",
            path=member.name,
        )
    if len(data) != member.file_size or crc32(data) != member.crc:
        raise SampleDecodeError(
            f"{where}:{member.name}: CRC-32 or size does not match the zip directory; "
            "the member is corrupt: re-mirror the part",
            path=member.name,
        )
    return data


def read_members(
    fs: AbstractFileSystem, path: str, size: int, members: Iterable[ZipMember]
) -> Iterator[tuple[ZipMember, bytes | SampleDecodeError]]:
    """Yield ``(member, data)`` for each member, in offset order.

    A member whose bytes cannot be read back intact yields the error instead of data,
    so one damaged member never hides the others. ``size`` is the zip's size in bytes.
    """
    for start, end, group in _windows(list(members)):
        window = memoryview(fs.cat_file(path, start=start, end=min(end, size)))
        for member in group:
            try:
                yield member, _extract(window, start, member, path)
            except SampleDecodeError as exc:
                yield member, exc
