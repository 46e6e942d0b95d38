"""Verify a SynthHuman zip so that no byte of it goes unchecked, in one sequential pass.

Every byte of a part is covered by one of these checks:

- **Member data**: its CRC-32 and size, as the central directory records them
  (deflated members are inflated in bounded steps).
- **Local headers and data descriptors**: each equal to its central-directory entry,
  field by field (flags, method, modification time, CRC-32, sizes, name). Fields the
  format lets differ (version needed, extra fields the central directory does not
  repeat) are read a second time from the server and compared.
- **Central directory, ZIP64 records and end record** (everything from the start of the
  central directory to the end of the file): read twice from the server over separate
  requests and compared (``confirm``), and parsed strictly: one disk, the records back
  to back with nothing between them, counts and sizes that agree.
- **No gap**: the members, back to back from byte 0, fill the file up to the central
  directory exactly; a byte that belongs to nothing is a problem.

The member set is checked too: safe names, five files per sample
(:func:`david_data.facts.sample_member_names`), no duplicate, no stray file. SHA-256 (and
MD5 when the server sent Content-MD5) of the whole file are computed in the same pass.

Each problem names its member (empty for whole-file problems) and, where re-fetching
bytes can fix it, the byte range to re-fetch (:attr:`Problem.start`, :attr:`Problem.end`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from .. import facts
from ..errors import UnsafeMemberError
from .transfer import TAIL_BYTES, read_blocks

try:  # ISA-L: the same functions, ~13x faster CRC-32 (uses the CPU's carry-less multiply)
    from isal import isal_zlib as zlib
except ImportError:  # pragma: no cover - plain zlib gives identical results, slower
    import zlib  # type: ignore[no-redef]

_ZlibError: type[Exception] = zlib.error  # type: ignore[assignment]  # isal's stubs

Confirm = Callable[[int, int], bytes]
"""``confirm(offset, length)``: those bytes read again from the server, in a request of
their own (see :func:`.fetch.fetch_range`)."""

_BLOCK = 8 << 20
"""Bytes read at a time in the full pass (one reusable buffer)."""
_INFLATE_IN = 1 << 20
_INFLATE_OUT = 4 << 20
"""Bounds on what one inflate step takes and gives (memory stays flat)."""
_EOCD = struct.Struct("<4s4H2LH")  # 22 bytes
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # 46 bytes
_LOCAL = struct.Struct("<4s5H3L2H")  # 30 bytes
_MAX_CENTRAL_DIRECTORY = 512 << 20
_U32, _U16 = 0xFFFFFFFF, 0xFFFF
_DESCRIPTOR_SIZES = (12, 16, 20, 24)
_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\\]")
"""A control character (NUL included) or a backslash."""


@dataclass(frozen=True, kw_only=True)
class ZipEntry:
    """One central-directory entry (sizes and offset with ZIP64 values applied)."""

    name: str
    raw_name: bytes
    offset: int
    version_needed: int
    method: int
    flags: int
    mod_time: int
    mod_date: int
    crc: int
    compressed_size: int
    size: int
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


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a part; ``member`` is empty for whole-file problems."""

    member: str
    problem: str
    start: int | None = None
    end: int | None = None
    """Bytes ``[start, end)`` to re-fetch to repair it (None: re-fetching a range cannot)."""

    def __str__(self) -> str:
        return f"{self.member}: {self.problem}" if self.member else self.problem


@dataclass(frozen=True, kw_only=True)
class ZipCheck:
    """Result of checking one zip."""

    size: int
    sha256: str | None
    """None in quick mode (no full read)."""
    content_md5: str | None
    """Base64 MD5 of the whole file, computed when asked for."""
    member_count: int
    sample_ids: tuple[int, ...]
    scenario_counts: dict[str, int]
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def repairable(self) -> bool:
        """Every problem names a byte range whose re-fetch may fix it."""
        return bool(self.problems) and all(p.start is not None for p in self.problems)

    def ranges(self) -> list[tuple[int, int]]:
        """The problems' byte ranges ``[start, end)``, sorted and merged."""
        spans = sorted((p.start, p.end) for p in self.problems if p.start is not None)
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            assert end is not None
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


class _Corrupt(Exception):
    """The archive structure cannot be read; ``start`` is where re-fetching should begin."""

    def __init__(self, message: str, start: int | None = None) -> None:
        super().__init__(message)
        self.start = start


def check_member_name(name: str) -> None:
    """Raise :class:`UnsafeMemberError` for names that could escape a folder."""
    parts = name.split("/")
    bad = (
        not name
        or name.startswith("/")
        or _UNSAFE_CHARACTER.search(name) is not None
        or (len(name) > 1 and name[1] == ":")
        or any(p in ("..", ".") for p in parts)
        or "" in parts[:-1]
    )
    if bad:
        raise UnsafeMemberError(
            f"unsafe zip member name {name!r}: absolute, with '..', a drive or control "
            "characters; refusing to use this archive",
            member=name,
        )


_FIRST_WINDOW = 1 << 10
_LONGEST_TAIL = (1 << 16) + 22 + 20
"""The largest end record (a 64 KiB comment) plus the ZIP64 locator."""


def read_layout(handle: IO[bytes], size: int) -> ZipLayout:
    """Parse the end records and the central directory (ZIP64 aware), strictly."""
    # The end record is searched in the last KiB first, then in the largest tail it can
    # need (a 64 KiB comment): the last record that ends the file is the same either way,
    # and a remote reader (the catalog) fetches a KiB instead of 64 when comments are short.
    for window in (_FIRST_WINDOW, _LONGEST_TAIL):
        tail_len = min(size, window)
        handle.seek(size - tail_len)
        tail = handle.read(tail_len)
        pos = tail.rfind(b"PK\x05\x06")
        while pos >= 0 and (
            pos + _EOCD.size > len(tail)
            or pos + _EOCD.size + struct.unpack_from("<H", tail, pos + 20)[0] != len(tail)
        ):
            pos = tail.rfind(b"PK\x05\x06", 0, pos)
        if pos >= 0 or tail_len == size:
            break
    if pos < 0:
        raise _Corrupt("no end-of-central-directory record: the file is truncated or not a zip")
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
    eocd_at = size - tail_len + pos
    records_at = eocd_at
    loc = pos - _ZIP64_LOCATOR.size
    if loc >= 0 and tail[loc : loc + 4] == b"PK\x06\x07":
        _, z64_disk, z64_offset, disks = _ZIP64_LOCATOR.unpack_from(tail, loc)
        if z64_disk != 0 or disks != 1:
            raise _Corrupt(f"the ZIP64 locator describes a multi-disk archive ({disks} disks)")
        if z64_offset + _ZIP64_EOCD.size > eocd_at - _ZIP64_LOCATOR.size:
            raise _Corrupt(f"the ZIP64 end record (offset {z64_offset}) does not fit in the file")
        handle.seek(z64_offset)
        record = handle.read(_ZIP64_EOCD.size)
        if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise _Corrupt("the ZIP64 end-of-central-directory record is missing or damaged")
        _, length, _, _, disk64, cd_disk64, on_disk64, count64, size64, offset64 = (
            _ZIP64_EOCD.unpack(record)
        )
        if z64_offset + 12 + length != eocd_at - _ZIP64_LOCATOR.size:
            raise _Corrupt("bytes between the ZIP64 end record and its locator are unaccounted")
        if (
            disk64
            or cd_disk64
            or on_disk64 != count64
            or disk not in (0, _U16)
            or cd_disk not in (0, _U16)
        ):
            raise _Corrupt("the ZIP64 end record describes a multi-disk archive")
        for short, full, marker in (
            (on_disk, on_disk64, _U16),
            (count, count64, _U16),
            (cd_size, size64, _U32),
            (cd_offset, offset64, _U32),
        ):
            if short not in (marker, full):
                raise _Corrupt("the end record and the ZIP64 end record disagree")
        count, cd_size, cd_offset = count64, size64, offset64
        records_at = z64_offset
    elif disk or cd_disk or on_disk != count:
        raise _Corrupt("the end record describes a multi-disk archive")
    if cd_size > _MAX_CENTRAL_DIRECTORY or cd_offset + cd_size != records_at:
        raise _Corrupt(
            f"the central directory (offset {cd_offset}, {cd_size} bytes) does not end where "
            f"the end records begin (byte {records_at})"
        )
    handle.seek(cd_offset)
    rest = handle.read(size - cd_offset)
    return ZipLayout(
        entries=tuple(_parse_central(rest[:cd_size], cd_offset, count)),
        cd_offset=cd_offset,
        tail=rest,
    )


def _parse_central(data: bytes, cd_offset: int, count: int) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    at = 0
    while at < len(data):
        if data[at : at + 4] != b"PK\x01\x02" or at + _CENTRAL.size > len(data):
            raise _Corrupt(f"damaged central directory entry at offset {cd_offset + at}", cd_offset)
        fields = _CENTRAL.unpack_from(data, at)
        version, flags, method, mtime, mdate, crc, csize, usize, nlen, xlen, clen = fields[2:13]
        offset = fields[16]
        end = at + _CENTRAL.size + nlen + xlen + clen
        if end > len(data):
            raise _Corrupt(
                f"central directory entry at offset {cd_offset + at} runs past its end", cd_offset
            )
        raw_name = data[at + 46 : at + 46 + nlen]
        extra = data[at + 46 + nlen : at + 46 + nlen + xlen]
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
        entries.append(
            ZipEntry(
                name=raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace"),
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
        raise _Corrupt(
            f"the central directory lists {len(entries)} entries but claims {count}", cd_offset
        )
    return entries


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 0x0001:
            values = extra[at + 4 : at + 4 + length]
            i = 0
            fields = []
            for value in (usize, csize, offset):
                if value == _U32 and i + 8 <= len(values):
                    fields.append(struct.unpack_from("<Q", values, i)[0])
                    i += 8
                else:
                    fields.append(value)
            return fields[0], fields[1], fields[2]
        at += 4 + length
    return usize, csize, offset


def _extra_records(extra: bytes) -> list[tuple[int, bytes]] | None:
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


def member_set_problems(
    entries: list[ZipEntry] | tuple[ZipEntry, ...],
) -> tuple[list[Problem], list[int]]:
    """Names that are unsafe, stray or duplicated, and samples missing files."""
    problems: list[Problem] = []
    kinds: dict[int, set[str]] = {}
    seen: Counter[str] = Counter()
    for entry in entries:
        try:
            check_member_name(entry.name)
        except UnsafeMemberError as exc:
            problems.append(Problem(member=entry.name, problem=exc.message))
            continue
        if entry.is_dir:
            continue
        base = entry.name.rsplit("/", 1)[-1]
        seen[base] += 1
        if seen[base] == 2:
            problems.append(Problem(member=entry.name, problem="duplicate member"))
        ref = facts.parse_member_name(entry.name)
        if ref is None:
            problems.append(
                Problem(
                    member=entry.name, problem="unexpected member (not a SynthHuman sample file)"
                )
            )
            continue
        kinds.setdefault(ref.sample_id, set()).add(ref.kind)
    for sample_id, have in sorted(kinds.items()):
        for kind in facts.FILE_KINDS:
            if kind not in have:
                problems.append(
                    Problem(
                        member=facts.member_name(kind, sample_id),
                        problem="missing from the archive",
                    )
                )
    return problems, sorted(kinds)


def check_zip(
    handle: IO[bytes],
    size: int,
    *,
    quick: bool = False,
    want_md5: bool = False,
    confirm: Confirm | None = None,
) -> ZipCheck:
    """Check a zip opened as a binary file of ``size`` bytes (see module docstring).

    ``quick`` reads only the end records and central directory (names, member set);
    otherwise every byte is read once in order, hashed and checked. ``confirm`` reads
    bytes again from the server: without it (a file already at rest), the central
    directory and the header fields it does not repeat are covered by the SHA-256 only.
    """
    problems: list[Problem] = []
    layout: ZipLayout | None = None
    sample_ids: list[int] = []
    try:
        layout = read_layout(handle, size)
        found, sample_ids = member_set_problems(layout.entries)
        problems += found
    except (_Corrupt, struct.error) as exc:
        # Still hash the file (full mode): two downloads with one SHA-256 tell a corrupt
        # server copy from a transfer error.
        start = getattr(exc, "start", None)
        start = (
            max(0, size - TAIL_BYTES) if start is None else min(start, max(0, size - TAIL_BYTES))
        )
        problems.append(
            Problem(member="", problem=f"unreadable zip structure: {exc}", start=start, end=size)
        )
    if layout is not None and confirm is not None:
        again = confirm(layout.cd_offset, size - layout.cd_offset)
        if again != layout.tail:
            at = next(
                (i for i, (a, b) in enumerate(zip(again, layout.tail, strict=False)) if a != b),
                min(len(again), len(layout.tail)),
            )
            problems.append(
                Problem(
                    member="",
                    problem="the central directory and end records differ between two reads "
                    f"from the server (first at byte {layout.cd_offset + at})",
                    start=layout.cd_offset,
                    end=size,
                )
            )
    sha = md5 = None
    if not quick:
        scan = _Scan(layout, size, md5=want_md5)
        handle.seek(0)
        for block in read_blocks(handle, size, _BLOCK):  # type: ignore[arg-type]
            scan.feed(block)
        problems += scan.finish(confirm)
        sha = scan.sha.hexdigest()
        if scan.md5 is not None:
            md5 = base64.b64encode(scan.md5.digest()).decode()
    counts = Counter(facts.scenario_of(i) for i in sample_ids if 0 <= i < facts.NUM_SAMPLES)
    entries = layout.entries if layout is not None else ()
    return ZipCheck(
        size=size,
        sha256=sha,
        content_md5=md5,
        member_count=sum(1 for e in entries if not e.is_dir),
        sample_ids=tuple(sample_ids),
        scenario_counts=dict(sorted(counts.items())),
        problems=tuple(problems),
    )


def _plain_header(entry: ZipEntry) -> bytes:
    """The local header that repeats ``entry`` exactly, with no extra field."""
    return (
        _LOCAL.pack(
            b"PK\x03\x04",
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


def _header_differences(header: bytes, entry: ZipEntry) -> tuple[list[str], bool]:
    """Fields of a local header that differ from its central-directory entry, and
    whether it holds bytes the central directory does not repeat (to read again)."""
    if entry.size < _U32 and entry.compressed_size < _U32 and header == _plain_header(entry):
        return [], False  # the usual case, byte for byte what the entry implies
    (_, version, flags, method, mtime, mdate, crc, csize, usize, nlen, _) = _LOCAL.unpack_from(
        header
    )
    wrong = []
    if header[_LOCAL.size : _LOCAL.size + nlen] != entry.raw_name:
        wrong.append("name")
    if flags != entry.flags:
        wrong.append("flags")
    if method != entry.method:
        wrong.append("compression method")
    if (mtime, mdate) != (entry.mod_time, entry.mod_date):
        wrong.append("modification time")
    records = _extra_records(header[_LOCAL.size + nlen :])
    if records is None:
        wrong.append("extra field")
        records = []
    unrepeated = version != entry.version_needed
    central = _extra_records(entry.extra) or []
    z64: list[int] = []
    for tag, data in records:
        if tag == 0x0001 and len(data) % 8 == 0:
            z64 = [struct.unpack_from("<Q", data, i)[0] for i in range(0, len(data), 8)]
        elif (tag, data) not in central:
            unrepeated = True
    if flags & 0x08 and crc == csize == usize == 0 and not z64:
        return wrong, unrepeated  # CRC and sizes follow the data, in the descriptor
    if crc != entry.crc:
        wrong.append("CRC-32")
    sizes = iter(z64)
    usize = next(sizes, -1) if usize == _U32 else usize
    csize = next(sizes, -1) if csize == _U32 else csize
    if usize != entry.size:
        wrong.append("size")
    if csize != entry.compressed_size:
        wrong.append("compressed size")
    if list(sizes):  # ZIP64 values the 32-bit fields did not call for
        unrepeated = True
    return wrong, unrepeated


class _Member:
    """One member's bytes, fed in order: local header, data, data descriptor.

    ``limit`` is where the next member (or the central directory) starts: a member must
    end exactly there, so every byte before the central directory belongs to one member.
    """

    def __init__(self, entry: ZipEntry, limit: int) -> None:
        self.entry, self.limit = entry, limit
        self.pos = entry.offset
        self.stage = "header"
        self.left = _LOCAL.size
        self.header = bytearray()
        self.descriptor = bytearray()
        self.problems: list[str] = []
        self.unrepeated = False
        self.data_ok = True
        self.crc = self.produced = 0
        self.inflater = zlib.decompressobj(-15) if entry.method == 8 else None

    @property
    def done(self) -> bool:
        return self.stage == "done"

    def feed(self, data: memoryview) -> None:
        self.left -= len(data)
        self.pos += len(data)
        if self.stage == "header":
            self.header += data
        elif self.stage == "data" and self.data_ok:
            self._check_data(data)
        elif self.stage == "descriptor":
            self.descriptor += data
        while self.left == 0 and self.stage != "done":
            self._next_stage()

    def _skip_to_limit(self, problem: str) -> None:
        """A broken member: note it, and take everything up to the next member as its."""
        self.problems.append(problem)
        self.stage, self.left = "skip", self.limit - self.pos

    def _next_stage(self) -> None:
        if self.stage == "header" and len(self.header) == _LOCAL.size:
            if self.header[:4] != b"PK\x03\x04":
                self._skip_to_limit(f"no local file header at offset {self.entry.offset}")
                return
            nlen, xlen = struct.unpack_from("<HH", self.header, 26)
            if self.pos + nlen + xlen > self.limit:
                self._skip_to_limit("the local header runs into the next member")
                return
            self.left = nlen + xlen
            if self.left:
                return
        if self.stage == "header":
            wrong, self.unrepeated = _header_differences(bytes(self.header), self.entry)
            if wrong:
                self.problems.append(
                    "local header differs from the central directory in: " + ", ".join(wrong)
                )
            if self.entry.method not in (0, 8):
                self.problems.append(
                    f"compression method {self.entry.method} is not supported, so its CRC-32 "
                    "cannot be checked"
                )
                self.data_ok = False
            if self.pos + self.entry.compressed_size > self.limit:
                self._skip_to_limit("the data runs into the next member")
                return
            self.stage, self.left = "data", self.entry.compressed_size
        elif self.stage == "data":
            if self.data_ok:
                self._check_result()
            self.stage, self.left = "done", 0
            if self.entry.flags & 0x08:
                room = self.limit - self.pos
                if room in _DESCRIPTOR_SIZES:
                    self.stage, self.left = "descriptor", room
                else:
                    self.problems.append("its data descriptor is missing or of a wrong size")
        elif self.stage == "descriptor":
            self._check_descriptor()
            self.stage = "done"
        else:  # skip
            self.stage = "done"

    def _check_data(self, data: memoryview) -> None:
        if self.inflater is None:
            self.crc = zlib.crc32(data, self.crc)
            self.produced += len(data)
            return
        try:
            for at in range(0, len(data), _INFLATE_IN):
                chunk: memoryview | bytes = data[at : at + _INFLATE_IN]
                while chunk:
                    out = self.inflater.decompress(chunk, _INFLATE_OUT)
                    self.crc, self.produced = zlib.crc32(out, self.crc), self.produced + len(out)
                    chunk = self.inflater.unconsumed_tail
        except _ZlibError as exc:
            self.problems.append(f"deflate data is corrupt ({exc})")
            self.data_ok = False

    def _check_result(self) -> None:
        if self.inflater is not None:
            tail = self.inflater.flush()
            self.crc, self.produced = zlib.crc32(tail, self.crc), self.produced + len(tail)
        if self.produced != self.entry.size:
            self.problems.append(
                f"size {self.produced} differs from the recorded {self.entry.size}"
            )
        elif self.crc != self.entry.crc:
            self.problems.append(
                f"CRC-32 mismatch (recorded {self.entry.crc:08x}, data gives {self.crc:08x})"
            )

    def _check_descriptor(self) -> None:
        data = bytes(self.descriptor)
        if len(data) in (16, 24) and data[:4] == b"PK\x07\x08":
            data = data[4:]
        fields = (
            struct.unpack("<LLL" if len(data) == 12 else "<LQQ", data)
            if len(data) in (12, 20)
            else None
        )
        entry = self.entry
        if fields != (entry.crc, entry.compressed_size, entry.size):
            self.problems.append("its data descriptor differs from the central directory")

    def truncated(self) -> str:
        if self.stage == "header":
            return f"the file ends inside its local header (offset {self.entry.offset})"
        return f"the file ends inside it (at byte {self.pos})"


class _Scan:
    """The single sequential pass: whole-file hashes plus every member's checks.

    Blocks of any size are fed in file order; hashes see every block whole (large
    buffers, so hashlib and zlib run without the GIL) and members see their slices,
    never copied.
    """

    def __init__(self, layout: ZipLayout | None, size: int, *, md5: bool) -> None:
        self.sha = hashlib.sha256()
        self.md5 = hashlib.md5() if md5 else None
        self.size = size
        self.pos = 0
        self.member: _Member | None = None
        self.problems: list[Problem] = []
        self.gaps: list[list[int]] = []
        self.unrepeated: list[tuple[_Member, bytes]] = []
        self.cd_offset = layout.cd_offset if layout is not None else size
        kept: list[ZipEntry] = []
        for entry in sorted(layout.entries if layout else (), key=lambda e: e.offset):
            if entry.offset >= self.cd_offset:
                where = "inside the central directory"
            elif kept and entry.offset == kept[-1].offset:
                where = f"where {kept[-1].name} starts"
            else:
                kept.append(entry)
                continue
            self.problems.append(
                Problem(
                    member=entry.name,
                    problem=f"its local header offset {entry.offset} lies {where}",
                    start=self.cd_offset,
                    end=size,
                )
            )
        limits = [e.offset for e in kept[1:]] + [self.cd_offset][: len(kept)]
        self.todo = deque(zip(kept, limits, strict=True))
        self.structure_known = layout is not None

    def feed(self, block: memoryview) -> None:
        self.sha.update(block)
        if self.md5 is not None:
            self.md5.update(block)
        if not self.structure_known:
            self.pos += len(block)
            return
        at, end = 0, len(block)
        while at < end:
            if self.member is None:
                target = self.todo[0][0].offset if self.todo else self.cd_offset
                if self.pos < target:
                    step = min(target - self.pos, end - at)
                    self._gap(self.pos, step)
                    at, self.pos = at + step, self.pos + step
                    continue
                if not self.todo:
                    self.pos += end - at  # the tail: compared with a second read
                    return
                self.member = _Member(*self.todo.popleft())
            member = self.member
            step = min(member.left, end - at)
            member.feed(block[at : at + step])
            at, self.pos = at + step, self.pos + step
            if member.done:
                self._close(member)
                self.member = None

    def _gap(self, start: int, length: int) -> None:
        if self.gaps and self.gaps[-1][1] == start:
            self.gaps[-1][1] += length
        else:
            self.gaps.append([start, start + length])

    def _close(self, member: _Member) -> None:
        entry = member.entry
        for problem in member.problems:
            self.problems.append(
                Problem(member=entry.name, problem=problem, start=entry.offset, end=member.limit)
            )
        if member.unrepeated and not member.problems:
            self.unrepeated.append((member, bytes(member.header)))

    def finish(self, confirm: Confirm | None) -> list[Problem]:
        """Problems found, plus those of members the data never reached, plus local
        header bytes that a second read from the server does not repeat."""
        problems = self.problems
        if self.pos < self.size:
            problems.append(
                Problem(
                    member="", problem=f"the file ends at byte {self.pos}, before byte {self.size}"
                )
            )
        if self.member is not None:
            problems.append(Problem(member=self.member.entry.name, problem=self.member.truncated()))
        problems.extend(
            Problem(
                member=entry.name,
                problem=f"starts at byte {entry.offset}, beyond the end of the file",
            )
            for entry, _ in self.todo
        )
        problems.extend(
            Problem(
                member="",
                problem=f"{end - start} bytes at offset {start} belong to no member",
                start=start,
                end=end,
            )
            for start, end in self.gaps
        )
        if confirm is not None:
            for member, header in self.unrepeated:
                if confirm(member.entry.offset, len(header)) != header:
                    problems.append(
                        Problem(
                            member=member.entry.name,
                            problem="its local header differs between two reads from the server",
                            start=member.entry.offset,
                            end=member.limit,
                        )
                    )
        return problems
