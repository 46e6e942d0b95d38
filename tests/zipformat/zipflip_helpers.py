"""A small part with stored and deflated members, and the offsets of its structural bytes."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from david_data.synth._zipwriter import DEFLATED, STORED, ZipStreamWriter

NAME = "SynthHuman_0000.zip"
MEMBERS = (
    # The first member's record is 265 bytes: flipping the low byte of its offset in the
    # central directory (0 -> 255) puts its header 10 bytes before the next member.
    ("rgb_0000000.png", STORED, bytes((i * 7) % 256 for i in range(220))),
    ("alpha_0000000.png", STORED, bytes(range(256)) * 8),
    ("depth_0000000.exr", DEFLATED, b"depth " * 300 + bytes(range(256))),
    ("normal_0000000.exr", DEFLATED, bytes((i * i) % 251 for i in range(900))),
    ("cam_0000000.txt", DEFLATED, b"500 0 192\n0 500 256\n0 0 1\n"),
)


def build_part(*, zip64: bool = False) -> bytes:
    """One sample's five files, two stored and three deflated (~3.5 KB)."""
    buffer = io.BytesIO()
    writer = ZipStreamWriter(buffer, force_zip64=zip64)
    for name, method, data in MEMBERS:
        writer.add(name, data, method=method)
    writer.close()
    return buffer.getvalue()


@dataclass(frozen=True)
class Layout:
    """Where the bytes of a part lie, by role."""

    local_headers: list[range]
    data: list[tuple[str, int, range]]
    """(member, method, data bytes)."""
    central: range
    """Central directory, ZIP64 records and end record: to the end of the file."""
    offset_fields: list[int]
    """First byte of each central-directory entry's local-header offset field."""

    def structural(self) -> list[int]:
        """Every local-header and directory byte, and each member's first and last data byte."""
        offsets = [o for r in self.local_headers for o in r] + list(self.central)
        offsets += [o for _, _, r in self.data for o in (r[0], r[-1])]
        return sorted(set(offsets))


def layout_of(data: bytes) -> Layout:
    locals_, members = [], []
    at = 0
    while data[at : at + 4] == b"PK\x03\x04":
        method, _, _, _, csize, _, nlen, xlen = struct.unpack_from("<HHHLLLHH", data, at + 8)
        header_end = at + 30 + nlen + xlen
        if csize == 0xFFFFFFFF:  # ZIP64: sizes in the extra field
            csize = struct.unpack_from("<Q", data, at + 30 + nlen + 12)[0]
        name = data[at + 30 : at + 30 + nlen].decode()
        locals_.append(range(at, header_end))
        members.append((name, method, range(header_end, header_end + csize)))
        at = header_end + csize
    fields = []
    pos = at
    while data[pos : pos + 4] == b"PK\x01\x02":
        nlen, xlen, clen = struct.unpack_from("<HHH", data, pos + 28)
        fields.append(pos + 42)
        pos += 46 + nlen + xlen + clen
    return Layout(
        local_headers=locals_, data=members, central=range(at, len(data)), offset_fields=fields
    )


def flipped(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0xFF
    return bytes(out)


def inflates_back(data: bytes) -> bool:
    """The part's deflated members decompress to their content (the builder works)."""
    lay = layout_of(data)
    return all(
        zlib.decompress(data[r.start : r.stop], -15) == content
        for (_, method, r), (_, _, content) in zip(lay.data, MEMBERS, strict=True)
        if method == DEFLATED
    )
