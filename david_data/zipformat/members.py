"""Check one member while its record streams in: local header, data, data descriptor.

A :class:`MemberReader` is fed the bytes of one member's record in file order, from its
local header on, in pieces of any size, and never takes a byte at or past ``end`` (where
the next record starts, or a bound on the record). It checks:

- the local header against the central directory (:func:`.local.header_differences`);
- the data, streamed through CRC-32 (ISA-L when installed: the same function, ~13x
  faster) and, for a deflated member, through inflate in bounded steps: the deflate
  stream must end exactly at the recorded compressed size (no byte after its end, no
  end missing), inflate to exactly the recorded size, and give the recorded CRC-32;
- with ``descriptor=True``, the data descriptor that flag 0x08 puts after the data: it
  must fill the record up to ``end`` and repeat the directory's CRC-32 and sizes.

A record whose structure cannot be followed (no local-header signature, a header or data
that would run past ``end``) is *broken*: the reader stops and says so, never reading
outside its record. Memory stays flat unless ``keep`` asks for the content; ``sink``
is handed the content as it is produced (not yet verified: :meth:`MemberReader.check`
at the end says whether to keep it).
"""

from __future__ import annotations

from collections.abc import Callable

from isal import isal_zlib as zlib  # zlib's functions; a much faster CRC-32 (a core dependency)

from ..errors import VerificationError
from .local import DESCRIPTOR_SIZES, LOCAL, descriptor_matches, header_differences, variable_lengths
from .records import DEFLATED, DESCRIPTOR_FLAG, STORED, MemberSpec, ZipEntry

_ZlibError: type[Exception] = zlib.error  # type: ignore[assignment]  # isal's stubs

_INFLATE_IN = 1 << 20
_INFLATE_OUT = 4 << 20
"""Bounds on what one inflate step takes and gives (memory stays flat)."""
_HEADER, _DATA, _DESCRIPTOR, _DONE = range(4)


class MemberReader:
    """The streaming check of one member's record (see the module docstring)."""

    def __init__(
        self,
        spec: MemberSpec,
        *,
        end: int,
        keep: bool = False,
        descriptor: bool = False,
        sink: Callable[[bytes | memoryview], object] | None = None,
    ) -> None:
        self.spec = spec
        self.end = end
        """No byte at or past this offset belongs to the record."""
        self.pos = spec.offset
        """Offset of the next byte the reader takes."""
        self.problems: list[str] = []
        self.broken = False
        """The record's structure could not be followed (see the module docstring)."""
        self.unrepeated = False
        """The local header holds bytes the central directory does not repeat."""
        self.header = bytearray()
        self.crc = 0
        self.produced = 0
        self._keep = bytearray() if keep else None
        self._sink = sink
        self._descriptor = bytearray() if descriptor else None
        self._stage = _HEADER
        self._header_size = LOCAL.size
        self._left = 0
        """Bytes left in the data or descriptor stage."""
        self._early = 0
        """Compressed bytes that came after the end of the deflate stream."""
        self._check = spec.method in (STORED, DEFLATED)
        self._inflater = zlib.decompressobj(-15) if spec.method == DEFLATED else None
        if not self._check:
            self.problems.append(
                f"compression method {spec.method} is not supported (stored, deflated), so "
                "its CRC-32 cannot be checked"
            )
        if end - spec.offset < LOCAL.size:
            self._break(f"its record (bytes {spec.offset} to {end}) has no room for a local header")

    @property
    def done(self) -> bool:
        """True once the record was read whole, or found broken."""
        return self._stage == _DONE

    def feed(self, data: memoryview) -> int:
        """Take what the record still needs from the front of ``data``; returns how many
        bytes it took (the rest belongs to whatever follows the record)."""
        n = min(len(data), self.end - self.pos)
        taken = 0
        while taken < n and self._stage != _DONE:
            if self._stage == _HEADER:
                step = min(self._header_size - len(self.header), n - taken)
                self.header += data[taken : taken + step]
                self.pos += step
                taken += step
                if len(self.header) == self._header_size:
                    self._header_read()
                continue
            step = min(self._left, n - taken)
            if self._stage == _DATA:
                if self._check:
                    self._data(data[taken : taken + step])
            elif self._descriptor is not None:
                self._descriptor += data[taken : taken + step]
            self._left -= step
            self.pos += step
            taken += step
            if self._left == 0:
                self._stage_read()
        if self._stage == _HEADER and self.pos == self.end:
            self._break(f"its local header runs past its record's end (byte {self.end})")
        return taken

    def unfinished(self) -> str:
        """Why the record is not done (the bytes stopped early)."""
        if self._stage == _HEADER:
            return f"the record ends inside its local header (offset {self.spec.offset})"
        if self._stage == _DATA:
            size = self.spec.compressed_size
            return f"data truncated ({size - self._left} of {size} bytes)"
        return "the record ends inside its data descriptor"

    def check(self) -> None:
        """Raise :class:`~david_data.errors.VerificationError` naming the member unless
        its record was read whole and passed every check."""
        problems = self.problems if self.done else [*self.problems, self.unfinished()]
        if problems:
            name = self.spec.name
            raise VerificationError(f"{name}: {'; '.join(problems)}", member=name)

    def content(self) -> bytes:
        """The member's verified content (``keep=True``); raises as :meth:`check` does."""
        self.check()
        if self._keep is None:
            raise ValueError(f"{self.spec.name}: content not kept (keep=False)")
        return bytes(self._keep)

    def _break(self, problem: str) -> None:
        self.problems.append(problem)
        self.broken = True
        self._stage = _DONE

    def _header_read(self) -> None:
        spec = self.spec
        if self._header_size == LOCAL.size:
            lengths = variable_lengths(self.header)
            if lengths is None:
                self._break(f"no local file header at offset {spec.offset}")
                return
            self._header_size += lengths[0] + lengths[1]
            if spec.offset + self._header_size > self.end:
                self._break("its local header runs into the next record")
                return
            if len(self.header) < self._header_size:
                return
        wrong, self.unrepeated = header_differences(bytes(self.header), spec)
        if wrong:
            self.problems.append(
                "local header differs from the central directory in: " + ", ".join(wrong)
            )
        if self.pos + spec.compressed_size > self.end:
            self._break("its data runs into the next record")
            return
        self._stage, self._left = _DATA, spec.compressed_size
        if not self._left:
            self._stage_read()

    def _stage_read(self) -> None:
        if self._stage == _DESCRIPTOR:
            if not descriptor_matches(bytes(self._descriptor or b""), self.spec):
                self.problems.append("its data descriptor differs from the central directory")
            self._stage = _DONE
            return
        if self._check:
            self._data_end()
        self._stage = _DONE
        if self._descriptor is None:
            return
        flags = (
            self.spec.flags
            if isinstance(self.spec, ZipEntry)
            else int.from_bytes(self.header[6:8], "little")
        )
        if flags & DESCRIPTOR_FLAG:
            room = self.end - self.pos
            if room in DESCRIPTOR_SIZES:
                self._stage, self._left = _DESCRIPTOR, room
            else:
                self.problems.append("its data descriptor is missing or of a wrong size")

    def _took(self, piece: bytes | memoryview) -> None:
        self.crc = zlib.crc32(piece, self.crc)
        self.produced += len(piece)
        if self.produced > self.spec.size:
            self.problems.append(f"its data gives more than the recorded {self.spec.size} bytes")
            self._check = False
            return
        if self._keep is not None:
            self._keep += piece
        if self._sink is not None:
            self._sink(piece)

    def _data(self, data: memoryview) -> None:
        inflater = self._inflater
        if inflater is None:
            self._took(data)
            return
        if inflater.eof:
            self._early += len(data)
            return
        try:
            at = 0
            while at < len(data):
                chunk: memoryview | bytes = data[at : at + _INFLATE_IN]
                at += len(chunk)
                while chunk:
                    self._took(inflater.decompress(chunk, _INFLATE_OUT))
                    chunk = inflater.unconsumed_tail
                    if inflater.eof:
                        self._early += len(inflater.unused_data) + len(data) - at
                        return
                    if not self._check:
                        return
        except _ZlibError as exc:
            self.problems.append(f"its deflate data is corrupt ({exc})")
            self._check = False

    def _data_end(self) -> None:
        spec, inflater = self.spec, self._inflater
        if inflater is not None:
            if not inflater.eof:
                try:
                    self._took(inflater.flush())
                except _ZlibError as exc:
                    self.problems.append(f"its deflate data is corrupt ({exc})")
                    return
                if not self._check:
                    return
            if self._early:
                self.problems.append(
                    f"its deflate stream ends {self._early} bytes before its recorded "
                    f"compressed size ({spec.compressed_size} bytes)"
                )
                return
            if not inflater.eof:
                self.problems.append(
                    "its deflate stream does not end at its recorded compressed size "
                    f"({spec.compressed_size} bytes): damaged or cut short"
                )
                return
        if self.produced != spec.size:
            self.problems.append(f"size {self.produced} differs from the recorded {spec.size}")
        elif self.crc != spec.crc:
            self.problems.append(
                f"CRC-32 mismatch (recorded {spec.crc:08x}, data gives {self.crc:08x})"
            )
