"""Check one zip member while its bytes stream in: local header, inflate, size, CRC-32.

A :class:`MemberStream` is fed the bytes of a member's record in order, from its local
header on. The header must carry the name and compression method the central directory
lists (and its CRC-32 unless a data descriptor follows); the data is inflated when
deflated, counted and run through CRC-32 (ISA-L when installed, as the mirror does) as it
arrives. :meth:`MemberStream.result` gives the member's content, or raises a
:class:`~david_data.errors.VerificationError` that names it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import VerificationError

try:  # ISA-L: the same functions as zlib, much faster CRC-32
    from isal import isal_zlib as zlib
except ImportError:  # pragma: no cover - plain zlib gives identical results, slower
    import zlib  # type: ignore[no-redef]

_LOCAL = struct.Struct("<4s5H3L2H")  # 30 bytes
_INFLATE_OUT = 4 << 20
STORED, DEFLATED = 0, 8


@dataclass(frozen=True, kw_only=True)
class MemberTask:
    """One member to fetch, as the catalog lists it."""

    sample_id: int
    name: str
    """The member's name in the zip (maybe inside a folder)."""
    offset: int
    end_offset: int
    compressed_size: int
    size: int
    crc32: int
    method: int

    @property
    def file_name(self) -> str:
        """Its name in the extracted layout (``rgb_0000123.png``)."""
        return self.name.rsplit("/", 1)[-1]


class MemberStream:
    """The streaming check of one member (see the module docstring)."""

    def __init__(self, task: MemberTask) -> None:
        self.task = task
        self.header = bytearray()
        self.header_size = _LOCAL.size
        self.data_left = -1
        """Compressed bytes still to come; -1 while the header is read."""
        self.crc = 0
        self.out = bytearray()
        self.problem: str | None = None
        if task.method not in (STORED, DEFLATED):
            self.problem = f"compression method {task.method} is not supported (stored, deflated)"
        self.inflater = zlib.decompressobj(-15) if task.method == DEFLATED else None

    @property
    def done(self) -> bool:
        """True once the header and all data bytes arrived (or the member failed)."""
        return self.problem is not None or self.data_left == 0

    def feed(self, data: memoryview) -> int:
        """Take what this member still needs from the front of ``data``; returns how
        many bytes it took (the rest belongs to whatever follows the member)."""
        taken = 0
        while taken < len(data) and not self.done:
            if self.data_left < 0:
                step = min(self.header_size - len(self.header), len(data) - taken)
                self.header += data[taken : taken + step]
                taken += step
                if len(self.header) == _LOCAL.size:
                    self._fixed_header()
                if len(self.header) == self.header_size and self.problem is None:
                    self._name()
                continue
            step = min(self.data_left, len(data) - taken)
            self._data(data[taken : taken + step])
            self.data_left -= step
            taken += step
        return taken

    def _fixed_header(self) -> None:
        magic, _, flags, method, _, _, crc, _, _, nlen, xlen = _LOCAL.unpack(self.header)
        if magic != b"PK\x03\x04":
            self.problem = f"no local file header at offset {self.task.offset}"
            return
        if method != self.task.method:
            self.problem = (
                f"local header says compression method {method}, the central directory "
                f"{self.task.method}"
            )
            return
        if not flags & 0x8 and crc != self.task.crc32:
            self.problem = (
                f"local header CRC-32 {crc:08x} differs from the central directory's "
                f"{self.task.crc32:08x}"
            )
            return
        self.flags = flags
        self.header_size = _LOCAL.size + nlen + xlen
        self.name_end = _LOCAL.size + nlen

    def _name(self) -> None:
        raw = bytes(self.header[_LOCAL.size : self.name_end])
        name = raw.decode("utf-8" if self.flags & 0x800 else "cp437", errors="replace")
        if name != self.task.name:
            self.problem = f"local header names {name!r}, not the central directory's member"
            return
        self.data_left = self.task.compressed_size

    def _data(self, data: memoryview) -> None:
        if self.problem is not None:
            return
        if self.inflater is None:
            self.crc = zlib.crc32(data, self.crc)
            self.out += data
            return
        chunk: memoryview | bytes = data
        try:
            while chunk:
                piece = self.inflater.decompress(chunk, _INFLATE_OUT)
                self.crc = zlib.crc32(piece, self.crc)
                self.out += piece
                if len(self.out) > self.task.size:
                    self.problem = f"inflates to more than the recorded {self.task.size} bytes"
                    return
                chunk = self.inflater.unconsumed_tail
        except zlib.error as exc:  # type: ignore[misc]  # isal's stubs
            self.problem = f"deflate data is corrupt ({exc})"

    def result(self) -> bytes:
        """The member's verified content; raises :class:`VerificationError` otherwise."""
        problem = self.problem
        if problem is None and self.data_left != 0:
            problem = (
                "the record ends inside its local header"
                if self.data_left < 0
                else f"data truncated ({self.task.compressed_size - self.data_left} of "
                f"{self.task.compressed_size} bytes)"
            )
        if problem is None and self.inflater is not None:
            tail = self.inflater.flush()
            self.crc = zlib.crc32(tail, self.crc)
            self.out += tail
        if problem is None and len(self.out) != self.task.size:
            problem = f"size {len(self.out)} differs from the recorded {self.task.size}"
        if problem is None and self.crc != self.task.crc32:
            problem = f"CRC-32 mismatch (recorded {self.task.crc32:08x}, data gives {self.crc:08x})"
        if problem is not None:
            raise VerificationError(f"{self.task.name}: {problem}", member=self.task.name)
        return bytes(self.out)
