"""A zip's end records and central directory, parsed strictly (ZIP64 aware).

The tail of a zip, as :func:`read_layout` expects it::

    [members: local header, data, optional data descriptor] ... (see :mod:`.local`)
    central directory   46-byte entries + name + extra + comment, back to back
    ZIP64 end record    (only in a ZIP64 archive) 56 bytes + extensible data
    ZIP64 locator       (only in a ZIP64 archive) 20 bytes
    end record          22 bytes + comment, the comment ending the file

Every offset, size and count is checked against the file's size and against the other
records before it is used: a damaged one raises :class:`~david_data.errors.ZipFormatError`
naming the record (and the member, for an entry), never an index error or a read
outside the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO, NoReturn

from ..errors import ZipFormatError

END = struct.Struct("<4s4H2LH")  # 22 bytes
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
ZIP64_END = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
CENTRAL = struct.Struct("<4s6H3L5H2L")  # 46 bytes
END_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_END_SIGNATURE = b"PK\x06\x06"
CENTRAL_SIGNATURE = b"PK\x01\x02"
U16, U32 = 0xFFFF, 0xFFFFFFFF
"""The values that say "see the ZIP64 records"."""
ZIP64_EXTRA = 0x0001
STORED, DEFLATED = 0, 8
UTF8_FLAG = 0x800
DESCRIPTOR_FLAG = 0x08
END_SEARCH_BYTES = U16 + END.size + ZIP64_LOCATOR.size
"""The end of a file that holds the end record whatever its comment, and the locator."""
FIRST_SEARCH_BYTES = 1 << 10
"""Where the end record is looked for first (it is there unless a long comment follows)."""
MAX_CENTRAL_DIRECTORY = 512 << 20


@dataclass(frozen=True, kw_only=True)
class MemberSpec:
    """What the central directory says of one member: what its record must match."""

    name: str
    offset: int
    """Of its local header."""
    method: int
    crc: int
    compressed_size: int
    size: int


@dataclass(frozen=True, kw_only=True)
class ZipEntry(MemberSpec):
    """One central-directory entry (sizes and offset with ZIP64 values applied)."""

    raw_name: bytes
    version_needed: int
    flags: int
    mod_time: int
    mod_date: int
    extra: bytes = b""

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(frozen=True, kw_only=True)
class ZipLayout:
    """The parsed tail of a zip: its entries, and the bytes from the central directory on."""

    entries: tuple[ZipEntry, ...]
    cd_offset: int
    tail: bytes
    """Bytes ``[cd_offset, size)``: central directory, ZIP64 records, end record."""


def decode_name(raw: bytes, flags: int) -> str:
    """A member name as the zip spells it: UTF-8 when flagged, else code page 437."""
    return raw.decode("utf-8" if flags & UTF8_FLAG else "cp437", errors="replace")


def read_layout(handle: IO[bytes], size: int) -> ZipLayout:
    """Parse the end records and the central directory of a file of ``size`` bytes.

    Raises :class:`~david_data.errors.ZipFormatError` when a record is missing or
    damaged, an archive spans several disks, or an entry's record does not fit between
    the start of the file and the central directory.
    """
    # The end record is searched in the last KiB first, then in the largest tail it can
    # need (a 64 KiB comment): the last record that ends the file is the same either way,
    # and a remote reader (the catalog) fetches a KiB instead of 64 when comments are short.
    for window in (FIRST_SEARCH_BYTES, END_SEARCH_BYTES):
        tail_len = min(size, window)
        handle.seek(size - tail_len)
        tail = handle.read(tail_len)
        if len(tail) != tail_len:
            raise ZipFormatError(
                f"the file ends at byte {size - tail_len + len(tail)}, before its size {size}",
                offset=size - tail_len,
                member="",
            )
        pos = tail.rfind(END_SIGNATURE)
        while pos >= 0 and (
            pos + END.size > len(tail)
            or pos + END.size + struct.unpack_from("<H", tail, pos + 20)[0] != len(tail)
        ):
            pos = tail.rfind(END_SIGNATURE, 0, pos)
        if pos >= 0 or tail_len == size:
            break
    if pos < 0:
        _fail(
            "no end-of-central-directory record: the file is truncated or not a zip",
            size - tail_len,
        )
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, _ = END.unpack_from(tail, pos)
    end_at = size - tail_len + pos
    records_at = end_at
    loc = pos - ZIP64_LOCATOR.size
    if loc >= 0 and tail[loc : loc + 4] == ZIP64_LOCATOR_SIGNATURE:
        locator_at = end_at - ZIP64_LOCATOR.size
        _, z64_disk, z64_offset, disks = ZIP64_LOCATOR.unpack_from(tail, loc)
        if z64_disk != 0 or disks != 1:
            _fail(f"the ZIP64 locator describes a multi-disk archive ({disks} disks)", locator_at)
        if z64_offset + ZIP64_END.size > locator_at:
            _fail(
                f"the ZIP64 end record (offset {z64_offset}) does not fit in the file", locator_at
            )
        handle.seek(z64_offset)
        record = handle.read(ZIP64_END.size)
        if len(record) < ZIP64_END.size or record[:4] != ZIP64_END_SIGNATURE:
            _fail("the ZIP64 end-of-central-directory record is missing or damaged", z64_offset)
        _, length, _, _, disk64, cd_disk64, on_disk64, count64, size64, offset64 = ZIP64_END.unpack(
            record
        )
        if z64_offset + 12 + length != locator_at:
            _fail("bytes between the ZIP64 end record and its locator are unaccounted", z64_offset)
        if (
            disk64
            or cd_disk64
            or on_disk64 != count64
            or disk not in (0, U16)
            or cd_disk not in (0, U16)
        ):
            _fail("the ZIP64 end record describes a multi-disk archive", z64_offset)
        for short, full, marker in (
            (on_disk, on_disk64, U16),
            (count, count64, U16),
            (cd_size, size64, U32),
            (cd_offset, offset64, U32),
        ):
            if short not in (marker, full):
                _fail("the end record and the ZIP64 end record disagree", z64_offset)
        count, cd_size, cd_offset = count64, size64, offset64
        records_at = z64_offset
    elif disk or cd_disk or on_disk != count:
        _fail("the end record describes a multi-disk archive", end_at)
    if cd_size > MAX_CENTRAL_DIRECTORY or cd_offset + cd_size != records_at:
        _fail(
            f"the central directory (offset {cd_offset}, {cd_size} bytes) does not end where "
            f"the end records begin (byte {records_at})",
            min(cd_offset, records_at),
        )
    handle.seek(cd_offset)
    rest = handle.read(size - cd_offset)
    if len(rest) != size - cd_offset:
        _fail(f"the file ends before byte {size}", cd_offset)
    entries = _parse_central(rest[:cd_size], cd_offset, count)
    return ZipLayout(entries=tuple(entries), cd_offset=cd_offset, tail=rest)


def _fail(message: str, offset: int, member: str = "") -> NoReturn:
    raise ZipFormatError(message, offset=offset, member=member)


def _parse_central(data: bytes, cd_offset: int, count: int) -> list[ZipEntry]:
    """The entries, each checked to fit: its local header, name and data end before
    the central directory (``cd_offset``)."""
    entries: list[ZipEntry] = []
    at = 0
    while at < len(data):
        where = cd_offset + at
        if data[at : at + 4] != CENTRAL_SIGNATURE or at + CENTRAL.size > len(data):
            _fail(f"damaged central directory entry at offset {where}", cd_offset)
        fields = CENTRAL.unpack_from(data, at)
        version, flags, method, mtime, mdate, crc, csize, usize, nlen, xlen, clen = fields[2:13]
        offset = fields[16]
        end = at + CENTRAL.size + nlen + xlen + clen
        if end > len(data):
            _fail(f"central directory entry at offset {where} runs past its end", cd_offset)
        raw_name = data[at + CENTRAL.size : at + CENTRAL.size + nlen]
        extra = data[at + CENTRAL.size + nlen : at + CENTRAL.size + nlen + xlen]
        usize, csize, offset = _apply_zip64(extra, usize, csize, offset)
        name = decode_name(raw_name, flags)
        if offset + 30 + nlen + csize > cd_offset:
            _fail(
                f"{name}: its record (local header at offset {offset}, {csize} bytes of data) "
                f"does not fit before the central directory (byte {cd_offset})",
                cd_offset,
                name,
            )
        entries.append(
            ZipEntry(
                name=name,
                raw_name=raw_name,
                offset=offset,
                version_needed=version,
                method=method,
                flags=flags,
                mod_time=mtime,
                mod_date=mdate,
                crc=crc,
                compressed_size=csize,
                size=usize,
                extra=extra,
            )
        )
        at = end
    if len(entries) != count:
        _fail(f"the central directory lists {len(entries)} entries but claims {count}", cd_offset)
    return entries


def _apply_zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Sizes and offset with the values of a ZIP64 extra record applied."""
    for tag, values in extra_records(extra) or ():
        if tag == ZIP64_EXTRA:
            i = 0
            fields = []
            for value in (usize, csize, offset):
                if value == U32 and i + 8 <= len(values):
                    fields.append(struct.unpack_from("<Q", values, i)[0])
                    i += 8
                else:
                    fields.append(value)
            return fields[0], fields[1], fields[2]
    return usize, csize, offset


def extra_records(extra: bytes) -> list[tuple[int, bytes]] | None:
    """An extra field as (tag, data) records; None when the records do not tile it."""
    records = []
    at = 0
    while at < len(extra):
        if at + 4 > len(extra):
            return None
        tag, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            return None
        records.append((tag, extra[at + 4 : at + 4 + length]))
        at += 4 + length
    return records


def record_end(entry: ZipEntry, following: int) -> int:
    """Where ``entry``'s record ends at the latest: the next record's offset
    (``following``), or what its local header, data and a data descriptor can span."""
    longest = entry.offset + 30 + len(entry.raw_name) + U16 + entry.compressed_size + 24
    return min(following, longest)


def record_ends(layout: ZipLayout) -> list[tuple[ZipEntry, int]]:
    """The entries in offset order, each with :func:`record_end` (the last one bounded
    by the central directory)."""
    ordered = sorted(layout.entries, key=lambda e: e.offset)
    follows = [e.offset for e in ordered[1:]] + [layout.cd_offset]
    return [(e, record_end(e, max(f, e.offset))) for e, f in zip(ordered, follows, strict=True)]
