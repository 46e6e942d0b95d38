"""A streaming zip writer with full control over ZIP64 records.

``zipfile`` writes a ZIP64 central directory only once an archive really passes
4 GiB (``force_zip64`` touches local headers alone), so small test parts could never
exercise a reader's ZIP64 path. This writer emits, in ``force_zip64`` mode, what a
> 4 GiB part holds: ZIP64 extra fields in every local and central header (sizes and
offset set to 0xFFFFFFFF), the ZIP64 end-of-central-directory record and its locator.
Without it, ZIP64 fields appear only where a value needs them, as ``zipfile`` does.

Member bytes are given whole (a sample file is ~1 MB), so sizes and CRC are known
before the local header: no data descriptors and no seeking, which lets it write to
any sequential binary stream, object-store uploads included.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import IO

_LIMIT32 = 0xFFFFFFFF
_LIMIT16 = 0xFFFF
# Fixed member time (2025-06-01 12:00:00) so that equal input gives equal bytes.
_DOS_TIME = 12 << 11
_DOS_DATE = ((2025 - 1980) << 9) | (6 << 5) | 1
_UNIX_FILE = 0o100644 << 16
_MADE_BY_UNIX = 3 << 8
STORED, DEFLATED = 0, 8


class ZipStreamWriter:
    """Write members one after the other to ``stream``; call :meth:`close` once at the end."""

    def __init__(
        self, stream: IO[bytes], *, method: int = STORED, force_zip64: bool = False
    ) -> None:
        self._stream = stream
        self._method = method
        self._force64 = force_zip64
        self._offset = 0
        self._central: list[bytes] = []
        self._names: set[str] = set()
        self.sha256 = hashlib.sha256()

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._offset

    def _write(self, data: bytes) -> None:
        self._stream.write(data)
        self.sha256.update(data)
        self._offset += len(data)

    def add(self, name: str, data: bytes, *, method: int | None = None) -> None:
        """Append one member ``name`` holding ``data`` (``method``: this member's
        compression, the writer's by default)."""
        if name in self._names:
            raise ValueError(f"duplicate zip member {name!r}")
        self._names.add(name)
        method = self._method if method is None else method
        crc = zlib.crc32(data)
        if method == DEFLATED:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = packer.compress(data) + packer.flush()
        else:
            payload = data
        usize, csize, offset = len(data), len(payload), self._offset
        encoded = name.encode("utf-8")
        flags = 0x800 if not encoded.isascii() else 0

        local64 = self._force64 or usize >= _LIMIT32 or csize >= _LIMIT32
        version = 45 if local64 else (20 if method == DEFLATED else 10)
        local_extra = struct.pack("<HHQQ", 1, 16, usize, csize) if local64 else b""
        self._write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                version,
                flags,
                method,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                _LIMIT32 if local64 else csize,
                _LIMIT32 if local64 else usize,
                len(encoded),
                len(local_extra),
            )
            + encoded
            + local_extra
        )
        self._write(payload)

        # Central header: ZIP64 fields in the order the spec fixes (size, csize, offset).
        fields64: list[int] = []
        usize32 = csize32 = offset32 = 0
        if self._force64 or usize >= _LIMIT32:
            fields64.append(usize)
            usize32 = _LIMIT32
        else:
            usize32 = usize
        if self._force64 or csize >= _LIMIT32:
            fields64.append(csize)
            csize32 = _LIMIT32
        else:
            csize32 = csize
        if self._force64 or offset >= _LIMIT32:
            fields64.append(offset)
            offset32 = _LIMIT32
        else:
            offset32 = offset
        extra = (
            struct.pack(f"<HH{len(fields64)}Q", 1, 8 * len(fields64), *fields64)
            if fields64
            else b""
        )
        central_version = 45 if fields64 else version
        self._central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                _MADE_BY_UNIX | central_version,
                central_version,
                flags,
                method,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                csize32,
                usize32,
                len(encoded),
                len(extra),
                0,
                0,
                0,
                _UNIX_FILE,
                offset32,
            )
            + encoded
            + extra
        )

    def close(self) -> None:
        """Write the central directory and end records (does not close the stream)."""
        start = self._offset
        for header in self._central:
            self._write(header)
        count, cd_size = len(self._central), self._offset - start
        need64 = self._force64 or count >= _LIMIT16 or start >= _LIMIT32 or cd_size >= _LIMIT32
        if need64:
            eocd64 = self._offset
            self._write(
                struct.pack(
                    "<IQHHIIQQQQ",
                    0x06064B50,
                    44,
                    _MADE_BY_UNIX | 45,
                    45,
                    0,
                    0,
                    count,
                    count,
                    cd_size,
                    start,
                )
            )
            self._write(struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1))
        full = self._force64
        self._write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                _LIMIT16 if full or count >= _LIMIT16 else count,
                _LIMIT16 if full or count >= _LIMIT16 else count,
                _LIMIT32 if full or cd_size >= _LIMIT32 else cd_size,
                _LIMIT32 if full or start >= _LIMIT32 else start,
                0,
            )
        )
