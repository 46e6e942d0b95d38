"""Verify a SynthHuman zip so that no byte of it goes unchecked, in one sequential pass.

Every byte of a part is covered by one of these checks:

- **Member data**: its CRC-32 and size, as the central directory records them; a
  deflated member's stream must end exactly at its compressed size
  (:class:`david_data.zipformat.MemberReader`, inflating in bounded steps).
- **Local headers and data descriptors**: each equal to its central-directory entry,
  field by field (flags, method, modification time, CRC-32, sizes, name). Fields the
  format lets differ (version needed, extra fields the central directory does not
  repeat) are read a second time from the server and compared.
- **Central directory, ZIP64 records and end record** (everything from the start of the
  central directory to the end of the file): read twice from the server over separate
  requests and compared (``confirm``), and parsed strictly
  (:func:`david_data.zipformat.read_layout`): one disk, the records back to back with
  nothing between them, counts and sizes that agree, every member's record inside the
  file before the central directory.
- **No gap**: the members, back to back from byte 0, fill the file up to the central
  directory exactly; a byte that belongs to nothing is a problem.

The member set is checked too (:mod:`.memberset`): safe names, five files per sample,
no duplicate, no stray file. SHA-256 (and MD5 when the server sent Content-MD5) of the
whole file are computed in the same pass.

Each problem names its member (empty for whole-file problems) and, where re-fetching
bytes can fix it, the byte range to re-fetch (:attr:`Problem.start`, :attr:`Problem.end`);
names read from a central directory that a second read does not repeat point at the
directory. A damaged offset or size is a problem like any other: the check always ends.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from .. import facts
from ..errors import ZipFormatError
from ..zipformat import MemberReader, ZipEntry, ZipLayout, read_layout
from .memberset import member_set_problems
from .transfer import TAIL_BYTES, read_blocks

Confirm = Callable[[int, int], bytes]
"""``confirm(offset, length)``: those bytes read again from the server, in a request of
their own (see :func:`.fetch.fetch_range`)."""

_BLOCK = 1 << 20
"""Bytes read at a time in the full pass (one reusable buffer, small enough to stay in
the CPU's cache between the read and the hashes: 0.68 CPU s/GB for read + SHA-256 with
1 MiB here, 0.71-0.73 with 8 MiB)."""


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
    names: list[tuple[str, str]] = []
    try:
        layout = read_layout(handle, size)
        names, sample_ids = member_set_problems(layout.entries)
    except ZipFormatError as exc:
        # Still hash the file (full mode): two downloads with one SHA-256 tell a corrupt
        # server copy from a transfer error.
        start = min(getattr(exc, "offset", size), max(0, size - TAIL_BYTES))
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
    # Names from a directory the server does not repeat may be damaged in flight:
    # re-fetching the directory may repair them.
    differs = layout is not None and any(p.start == layout.cd_offset for p in problems)
    start, end = (layout.cd_offset, size) if layout is not None and differs else (None, None)
    problems += [Problem(member=m, problem=p, start=start, end=end) for m, p in names]
    sha = md5 = None
    if not quick:
        scan = _Scan(layout, size, md5=want_md5)
        handle.seek(0)
        for block in read_blocks(handle, size, _BLOCK):  # type: ignore[arg-type]  # an IO[bytes] is a binary file
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


class _Scan:
    """The single sequential pass: whole-file hashes plus every member's checks.

    Blocks of any size are fed in file order; hashes see every block whole (large
    buffers, so hashlib and zlib run without the GIL) and members see their slices,
    never copied. Member ``i``'s record is ``[offset_i, offset_i+1)`` (the last one's
    ends at the central directory): its reader never takes a byte past that, and a
    broken record's remaining bytes are skipped up to there, so the pass only moves
    forward.
    """

    def __init__(self, layout: ZipLayout | None, size: int, *, md5: bool) -> None:
        self.sha = hashlib.sha256()
        self.md5 = hashlib.md5() if md5 else None
        self.size = size
        self.pos = 0
        self.reader: MemberReader | None = None
        self.skip_to = 0
        """The end of a broken record: bytes up to here are its, not a gap."""
        self.problems: list[Problem] = []
        self.gaps: list[list[int]] = []
        self.unrepeated: list[tuple[MemberReader, bytes]] = []
        self.cd_offset = layout.cd_offset if layout is not None else size
        kept: list[ZipEntry] = []
        for entry in sorted(layout.entries if layout else (), key=lambda e: e.offset):
            if kept and entry.offset == kept[-1].offset:
                self.problems.append(
                    Problem(
                        member=entry.name,
                        problem=f"its local header offset {entry.offset} is where "
                        f"{kept[-1].name} starts",
                        start=self.cd_offset,
                        end=size,
                    )
                )
            else:
                kept.append(entry)
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
            if self.reader is None:
                target = self.todo[0][0].offset if self.todo else self.cd_offset
                if self.pos < self.skip_to:
                    step = min(self.skip_to - self.pos, end - at)
                elif self.pos < target:
                    step = min(target - self.pos, end - at)
                    self._gap(self.pos, step)
                elif not self.todo:
                    self.pos += end - at  # the tail: compared with a second read
                    return
                else:
                    entry, limit = self.todo.popleft()
                    self.reader = MemberReader(entry, end=limit, descriptor=True)
                    step = 0
                at, self.pos = at + step, self.pos + step
            else:
                taken = self.reader.feed(block[at:end])
                at, self.pos = at + taken, self.pos + taken
                if not taken and not self.reader.done:
                    raise RuntimeError(f"zip check made no progress at byte {self.pos}")
            if self.reader is not None and self.reader.done:
                self._close(self.reader)

    def _gap(self, start: int, length: int) -> None:
        if self.gaps and self.gaps[-1][1] == start:
            self.gaps[-1][1] += length
        else:
            self.gaps.append([start, start + length])

    def _close(self, reader: MemberReader) -> None:
        entry = reader.spec
        if reader.broken:
            self.skip_to = reader.end
        for problem in reader.problems:
            self.problems.append(
                Problem(member=entry.name, problem=problem, start=entry.offset, end=reader.end)
            )
        if reader.unrepeated and not reader.problems:
            self.unrepeated.append((reader, bytes(reader.header)))
        self.reader = None

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
        if self.reader is not None:
            problems.append(Problem(member=self.reader.spec.name, problem=self.reader.unfinished()))
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
            for reader, header in self.unrepeated:
                if confirm(reader.spec.offset, len(header)) != header:
                    problems.append(
                        Problem(
                            member=reader.spec.name,
                            problem="its local header differs between two reads from the server",
                            start=reader.spec.offset,
                            end=reader.end,
                        )
                    )
        return problems
