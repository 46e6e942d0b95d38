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
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from .. import facts
from ..errors import UnsafeMemberError

_READ = 1 << 20
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
    while pos >= 0 and pos + _EOCD.size + struct.unpack_from("<H", tail, pos + 20)[0] != len(tail):
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


class _Reader:
    """Sequential reader that hashes every byte it passes."""

    def __init__(self, handle: IO[bytes], sha: bool, md5: bool) -> None:
        self.handle = handle
        self.pos = 0
        self.sha = hashlib.sha256() if sha else None
        self.md5 = hashlib.md5() if md5 else None

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        self.pos += len(data)
        if self.sha is not None:
            self.sha.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        return data

    def skip_to(self, target: int) -> None:
        while self.pos < target:
            if not self.read(min(_READ, target - self.pos)):
                raise _Corrupt(f"the file ends at byte {self.pos}, before byte {target}")


def check_zip(
    handle: IO[bytes], size: int, *, quick: bool = False, want_md5: bool = False
) -> ZipCheck:
    """Check a zip opened as a binary file of ``size`` bytes (see module docstring).

    ``quick`` reads only the central directory (names, member set); otherwise every
    byte is read once in order, hashed, and every member's CRC-32 compared.
    """
    try:
        entries = read_central_directory(handle, size)
    except (_Corrupt, struct.error) as exc:
        return ZipCheck(
            size=size,
            sha256=None,
            content_md5=None,
            member_count=0,
            sample_ids=(),
            scenario_counts={},
            problems=(Problem(member="", problem=str(exc)),),
        )
    problems, sample_ids = member_set_problems(entries)
    sha = md5 = None
    if not quick:
        handle.seek(0)
        reader = _Reader(handle, sha=True, md5=want_md5)
        try:
            for entry in sorted(entries, key=lambda e: e.offset):
                if entry.offset < reader.pos:
                    problems.append(
                        Problem(member=entry.name, problem="overlaps the previous member")
                    )
                    continue
                reader.skip_to(entry.offset)
                problem = _check_member(reader, entry)
                if problem:
                    problems.append(Problem(member=entry.name, problem=problem))
            reader.skip_to(size)
        except _Corrupt as exc:
            problems.append(Problem(member="", problem=str(exc)))
        assert reader.sha is not None
        sha = reader.sha.hexdigest()
        if reader.md5 is not None:
            md5 = base64.b64encode(reader.md5.digest()).decode()
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


def _check_member(reader: _Reader, entry: ZipEntry) -> str | None:
    header = reader.read(_LOCAL.size)
    if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
        return f"no local file header at offset {entry.offset}"
    nlen, xlen = struct.unpack_from("<HH", header, 26)
    local_name = reader.read(nlen)
    reader.read(xlen)
    if (
        local_name.decode("utf-8" if entry.flags & 0x800 else "cp437", errors="replace")
        != entry.name
    ):
        return "local header name differs from the central directory"
    if entry.method not in (0, 8):
        reader.skip_to(reader.pos + entry.compressed_size)
        return (
            f"compression method {entry.method} is not supported, so its CRC-32 cannot be checked"
        )
    crc, produced, left = 0, 0, entry.compressed_size
    inflater = zlib.decompressobj(-15) if entry.method == 8 else None
    while left > 0:
        chunk = reader.read(min(_READ, left))
        if not chunk:
            return (
                f"data truncated ({entry.compressed_size - left} of {entry.compressed_size} bytes)"
            )
        left -= len(chunk)
        if inflater is None:
            crc = zlib.crc32(chunk, crc)
            produced += len(chunk)
            continue
        try:
            out = inflater.decompress(chunk, _READ)
            while True:
                crc, produced = zlib.crc32(out, crc), produced + len(out)
                if not inflater.unconsumed_tail:
                    break
                out = inflater.decompress(inflater.unconsumed_tail, _READ)
        except zlib.error as exc:
            return f"deflate data is corrupt ({exc})"
    if inflater is not None:
        tail = inflater.flush()
        crc, produced = zlib.crc32(tail, crc), produced + len(tail)
    if produced != entry.size:
        return f"size {produced} differs from the recorded {entry.size}"
    if crc != entry.crc:
        return f"CRC-32 mismatch (recorded {entry.crc:08x}, data gives {crc:08x})"
    return None
