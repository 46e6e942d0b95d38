"""Verify a SynthHuman zip in one sequential pass, without trusting anything.

1. Read the central directory from the tail (ZIP64 aware): the only seek, never
   inside a member.
2. Check every member name is safe and the member set is what a part must hold:
   five files per sample (:func:`david_data.facts.sample_member_names`), no duplicate,
   no stray file.
3. Stream the whole file front to back once, feeding SHA-256 (and MD5 when the server
   sent Content-MD5) and each member's CRC-32 (deflated members are inflated in
   bounded steps), comparing local headers with the central directory.

The result lists problems by member, so a report can say *which* file is broken.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import IO

from .. import facts
from ..errors import UnsafeMemberError
from .transfer import read_blocks

try:  # ISA-L: the same functions, ~13x faster CRC-32 (uses the CPU's carry-less multiply)
    from isal import isal_zlib as zlib
except ImportError:  # pragma: no cover - plain zlib gives identical results, slower
    import zlib  # type: ignore[no-redef]

_ZlibError: type[Exception] = zlib.error  # type: ignore[assignment]  # isal's stubs

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


@dataclass(frozen=True, kw_only=True)
class ZipEntry:
    name: str
    offset: int
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a part; ``member`` is empty for whole-file problems."""

    member: str
    problem: str

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


class _Corrupt(Exception):
    """The archive structure cannot be read at all."""


def check_member_name(name: str) -> None:
    """Raise :class:`UnsafeMemberError` for names that could escape a folder."""
    parts = name.split("/")
    bad = (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(ord(c) < 32 for c in name)
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


def read_central_directory(handle: IO[bytes], size: int) -> list[ZipEntry]:
    """Parse the central directory (ZIP64 aware) from the end of ``handle``."""
    tail_len = min(size, (1 << 16) + _EOCD.size + _ZIP64_LOCATOR.size)
    handle.seek(size - tail_len)
    tail = handle.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0 and (
        pos + _EOCD.size > len(tail)
        or pos + _EOCD.size + struct.unpack_from("<H", tail, pos + 20)[0] != len(tail)
    ):
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if pos < 0:
        raise _Corrupt("no end-of-central-directory record: the file is truncated or not a zip")
    _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
    eocd_at = size - tail_len + pos
    loc = pos - _ZIP64_LOCATOR.size
    if loc >= 0 and tail[loc : loc + 4] == b"PK\x06\x07":
        _, _, z64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, loc)
        handle.seek(z64_offset)
        record = handle.read(_ZIP64_EOCD.size)
        if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise _Corrupt("the ZIP64 end-of-central-directory record is missing or damaged")
        _, _, _, _, _, _, _, count, cd_size, cd_offset = _ZIP64_EOCD.unpack(record)
        eocd_at = z64_offset
    if cd_offset + cd_size > eocd_at or cd_size > _MAX_CENTRAL_DIRECTORY:
        raise _Corrupt(
            f"the central directory (offset {cd_offset}, {cd_size} bytes) does not fit in the file"
        )
    handle.seek(cd_offset)
    data = handle.read(cd_size)
    entries: list[ZipEntry] = []
    at = 0
    while at < len(data):
        if data[at : at + 4] != b"PK\x01\x02" or at + _CENTRAL.size > len(data):
            raise _Corrupt(f"damaged central directory entry at offset {cd_offset + at}")
        (_, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _, offset) = (
            _CENTRAL.unpack_from(data, at)
        )
        raw_name = data[at + 46 : at + 46 + nlen]
        extra = data[at + 46 + nlen : at + 46 + nlen + xlen]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
        entries.append(
            ZipEntry(
                name=name,
                offset=offset,
                method=method,
                flags=flags,
                crc=crc,
                compressed_size=csize,
                size=usize,
            )
        )
        at += 46 + nlen + xlen + clen
    if len(entries) != count:
        raise _Corrupt(f"the central directory lists {len(entries)} entries but claims {count}")
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
                if value == 0xFFFFFFFF and i + 8 <= len(values):
                    fields.append(struct.unpack_from("<Q", values, i)[0])
                    i += 8
                else:
                    fields.append(value)
            return fields[0], fields[1], fields[2]
        at += 4 + length
    return usize, csize, offset


def member_set_problems(entries: list[ZipEntry]) -> tuple[list[Problem], list[int]]:
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
    handle: IO[bytes], size: int, *, quick: bool = False, want_md5: bool = False
) -> ZipCheck:
    """Check a zip opened as a binary file of ``size`` bytes (see module docstring).

    ``quick`` reads only the central directory (names, member set); otherwise every
    byte is read once in order, hashed, and every member's CRC-32 compared.
    """
    try:
        entries = read_central_directory(handle, size)
        problems, sample_ids = member_set_problems(entries)
    except (_Corrupt, struct.error) as exc:
        # Still hash the file (full mode): two downloads with one SHA-256 tell a corrupt
        # server copy from a transfer error.
        entries, sample_ids = [], []
        problems = [Problem(member="", problem=f"unreadable zip structure: {exc}")]
    sha = md5 = None
    if not quick:
        scan = _Scan(entries, md5=want_md5)
        handle.seek(0)
        for block in read_blocks(handle, size, _BLOCK):  # type: ignore[arg-type]
            scan.feed(block)
        problems += scan.finish(size)
        sha = scan.sha.hexdigest()
        if scan.md5 is not None:
            md5 = base64.b64encode(scan.md5.digest()).decode()
    counts = Counter(facts.scenario_of(i) for i in sample_ids if 0 <= i < facts.NUM_SAMPLES)
    return ZipCheck(
        size=size,
        sha256=sha,
        content_md5=md5,
        member_count=sum(1 for e in entries if not e.is_dir),
        sample_ids=tuple(sample_ids),
        scenario_counts=dict(sorted(counts.items())),
        problems=tuple(problems),
    )


class _Member:
    """CRC-32 check of one member, fed its bytes (local header, then data) in order."""

    def __init__(self, entry: ZipEntry) -> None:
        self.entry = entry
        self.header = bytearray()
        self.header_size = _LOCAL.size
        self.data_left = -1
        """Data bytes still to come; -1 while the local header is being read."""
        self.problem: str | None = None
        self.crc = self.produced = 0
        self.inflater = zlib.decompressobj(-15) if entry.method == 8 else None

    @property
    def wants(self) -> int:
        """How many more bytes this member takes (0: finished)."""
        if self.data_left < 0:
            return self.header_size - len(self.header)
        return self.data_left

    def feed(self, data: memoryview) -> None:
        if self.data_left < 0:
            self.header += data
            if len(self.header) == _LOCAL.size:
                self._parse_fixed_header()
            elif len(self.header) == self.header_size:
                self._compare_name()
            return
        self.data_left -= len(data)
        if self.problem is not None:
            return  # skip the rest of a member already known to be bad
        if self.inflater is None:
            self.crc = zlib.crc32(data, self.crc)
            self.produced += len(data)
            return
        try:
            for at in range(0, len(data), _INFLATE_IN):
                self._inflate(data[at : at + _INFLATE_IN])
        except _ZlibError as exc:
            self.problem = f"deflate data is corrupt ({exc})"

    def _inflate(self, data: memoryview | bytes) -> None:
        assert self.inflater is not None
        while data:
            out = self.inflater.decompress(data, _INFLATE_OUT)
            self.crc, self.produced = zlib.crc32(out, self.crc), self.produced + len(out)
            data = self.inflater.unconsumed_tail

    def _parse_fixed_header(self) -> None:
        if self.header[:4] != b"PK\x03\x04":
            self._fail(f"no local file header at offset {self.entry.offset}")
            return
        nlen, xlen = struct.unpack_from("<HH", self.header, 26)
        self.header_size = _LOCAL.size + nlen + xlen
        if nlen + xlen == 0:
            self._compare_name()

    def _compare_name(self) -> None:
        entry = self.entry
        nlen = struct.unpack_from("<H", self.header, 26)[0]
        raw = bytes(self.header[_LOCAL.size : _LOCAL.size + nlen])
        if raw.decode("utf-8" if entry.flags & 0x800 else "cp437", errors="replace") != entry.name:
            self._fail("local header name differs from the central directory")
            return
        self.data_left = entry.compressed_size
        if entry.method not in (0, 8):
            self.problem = (
                f"compression method {entry.method} is not supported, so its CRC-32 cannot "
                "be checked"
            )

    def _fail(self, problem: str) -> None:
        """A broken header: the rest of the member is skipped (up to the next one)."""
        self.problem, self.data_left = problem, 0

    def result(self) -> str | None:
        """The member's problem once all its bytes were fed (None: it is intact)."""
        if self.problem is not None:
            return self.problem
        if self.inflater is not None:
            tail = self.inflater.flush()
            self.crc, self.produced = zlib.crc32(tail, self.crc), self.produced + len(tail)
        if self.produced != self.entry.size:
            return f"size {self.produced} differs from the recorded {self.entry.size}"
        if self.crc != self.entry.crc:
            return f"CRC-32 mismatch (recorded {self.entry.crc:08x}, data gives {self.crc:08x})"
        return None

    def truncated(self) -> str:
        if self.data_left < 0:
            return f"the file ends inside its local header (offset {self.entry.offset})"
        done = self.entry.compressed_size - self.data_left
        return f"data truncated ({done} of {self.entry.compressed_size} bytes)"


class _Scan:
    """The single sequential pass: whole-file hashes plus every member's CRC-32.

    Blocks of any size are fed in file order; hashes see every block whole (large
    buffers, so hashlib and zlib run without the GIL) and members see their slices,
    never copied.
    """

    def __init__(self, entries: list[ZipEntry], *, md5: bool) -> None:
        self.sha = hashlib.sha256()
        self.md5 = hashlib.md5() if md5 else None
        self.todo = deque(sorted(entries, key=lambda e: e.offset))
        self.pos = 0
        self.member: _Member | None = None
        self.problems: list[Problem] = []

    def feed(self, block: memoryview) -> None:
        self.sha.update(block)
        if self.md5 is not None:
            self.md5.update(block)
        at, end = 0, len(block)
        while at < end:
            if self.member is None:
                while self.todo and self.todo[0].offset < self.pos:
                    entry = self.todo.popleft()
                    self.problems.append(
                        Problem(member=entry.name, problem="overlaps the previous member")
                    )
                if not self.todo:
                    break  # the rest is the central directory: hashed, nothing to check
                gap = self.todo[0].offset - self.pos
                if gap > 0:
                    step = min(gap, end - at)
                    at, self.pos = at + step, self.pos + step
                    continue
                self.member = _Member(self.todo.popleft())
            member = self.member
            step = min(member.wants, end - at)
            member.feed(block[at : at + step])
            at, self.pos = at + step, self.pos + step
            if member.wants == 0:
                problem = member.result()
                if problem:
                    self.problems.append(Problem(member=member.entry.name, problem=problem))
                self.member = None
        self.pos += end - at

    def finish(self, size: int) -> list[Problem]:
        """Problems found, plus those of members the data never reached."""
        problems = self.problems
        if self.pos < size:
            problems.append(
                Problem(member="", problem=f"the file ends at byte {self.pos}, before byte {size}")
            )
        if self.member is not None:
            problems.append(Problem(member=self.member.entry.name, problem=self.member.truncated()))
        problems.extend(
            Problem(
                member=entry.name,
                problem=f"starts at byte {entry.offset}, beyond the end of the file",
            )
            for entry in self.todo
        )
        return problems
