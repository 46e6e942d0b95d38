"""A member's own records, compared with its central-directory entry.

One member's record, as it lies in the file::

    local header   30 bytes: signature, version, flags, method, time, date,
                   CRC-32, compressed size, size, name length, extra length
                   + name + extra field (ZIP64 sizes in tag 0x0001)
    data           compressed size bytes (stored, or a raw deflate stream)
    descriptor     only with flag 0x08: [PK\\x07\\x08] CRC-32, sizes (4 or 8 bytes each)

The central directory is the reference: a local header must repeat its entry, and
fields the format lets differ (version needed, extra records the directory does not
repeat) are reported as *unrepeated*, so that a caller can read them again.
"""

from __future__ import annotations

import struct

from .records import (
    DESCRIPTOR_FLAG,
    U32,
    ZIP64_EXTRA,
    MemberSpec,
    ZipEntry,
    decode_name,
    extra_records,
)

LOCAL = struct.Struct("<4s5H3L2H")  # 30 bytes
LOCAL_SIGNATURE = b"PK\x03\x04"
DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
DESCRIPTOR_SIZES = (12, 16, 20, 24)
"""CRC-32 and 4-byte sizes, or 8-byte ZIP64 sizes, each with or without the signature."""


def variable_lengths(fixed: bytes | bytearray) -> tuple[int, int] | None:
    """Name and extra-field lengths of a local header's fixed 30 bytes, or None when
    they do not start with the local-header signature."""
    if fixed[:4] != LOCAL_SIGNATURE:
        return None
    nlen, xlen = struct.unpack_from("<HH", fixed, 26)
    return nlen, xlen


def plain_header(entry: ZipEntry) -> bytes:
    """The local header that repeats ``entry`` exactly, with no extra field."""
    return (
        LOCAL.pack(
            LOCAL_SIGNATURE,
            entry.version_needed,
            entry.flags,
            entry.method,
            entry.mod_time,
            entry.mod_date,
            entry.crc,
            entry.compressed_size,
            entry.size,
            len(entry.raw_name),
            0,
        )
        + entry.raw_name
    )


def header_differences(header: bytes, spec: MemberSpec) -> tuple[list[str], bool]:
    """Fields of a whole local header that differ from the central directory's ``spec``,
    and whether it holds bytes the directory does not repeat (to be read again).

    A full :class:`~.records.ZipEntry` is compared field by field; a plain
    :class:`~.records.MemberSpec` (a catalogued member) on name, method, CRC-32 and sizes.
    """
    if (
        isinstance(spec, ZipEntry)
        and spec.size < U32
        and spec.compressed_size < U32
        and header == plain_header(spec)
    ):
        return [], False  # the usual case, byte for byte what the entry implies
    (_, version, flags, method, mtime, mdate, crc, csize, usize, nlen, _) = LOCAL.unpack_from(
        header
    )
    raw_name = header[LOCAL.size : LOCAL.size + nlen]
    wrong = []
    if isinstance(spec, ZipEntry):
        if raw_name != spec.raw_name:
            wrong.append(f"name ({decode_name(raw_name, flags)!r})")
        if flags != spec.flags:
            wrong.append("flags")
        if (mtime, mdate) != (spec.mod_time, spec.mod_date):
            wrong.append("modification time")
    elif decode_name(raw_name, flags) != spec.name:
        wrong.append(f"name ({decode_name(raw_name, flags)!r})")
    if method != spec.method:
        wrong.append("compression method")
    records = extra_records(header[LOCAL.size + nlen :])
    if records is None:
        wrong.append("extra field")
        records = []
    central: list[tuple[int, bytes]] = []
    unrepeated = False
    if isinstance(spec, ZipEntry):
        central = extra_records(spec.extra) or []
        unrepeated = version != spec.version_needed
    z64: list[int] = []
    for tag, data in records:
        if tag == ZIP64_EXTRA and len(data) % 8 == 0:
            z64 = [struct.unpack_from("<Q", data, i)[0] for i in range(0, len(data), 8)]
        elif (tag, data) not in central:
            unrepeated = True
    if flags & DESCRIPTOR_FLAG and crc == csize == usize == 0 and not z64:
        return wrong, unrepeated  # CRC and sizes follow the data, in the descriptor
    if crc != spec.crc:
        wrong.append("CRC-32")
    sizes = iter(z64)
    usize = next(sizes, -1) if usize == U32 else usize
    csize = next(sizes, -1) if csize == U32 else csize
    if usize != spec.size:
        wrong.append("size")
    if csize != spec.compressed_size:
        wrong.append("compressed size")
    if list(sizes):  # ZIP64 values the 32-bit fields did not call for
        unrepeated = True
    return wrong, unrepeated


def descriptor_matches(data: bytes, spec: MemberSpec) -> bool:
    """True when a data descriptor (one of :data:`DESCRIPTOR_SIZES`) repeats the
    central directory's CRC-32 and sizes."""
    if len(data) in (16, 24) and data[:4] == DESCRIPTOR_SIGNATURE:
        data = data[4:]
    if len(data) not in (12, 20):
        return False
    fields = struct.unpack("<LLL" if len(data) == 12 else "<LQQ", data)
    return fields == (spec.crc, spec.compressed_size, spec.size)
