"""Check the files at ``DEST/SynthHuman`` against their members: size, then the CRC-32 of
every byte, read in blocks into one buffer (flat memory).

A rerun of ``fetch`` counts a file as present only when it passes (:func:`check_present`);
one that fails is named (:class:`FileProblem`), removed and fetched again. The CRC-32 is
ISA-L's (``isal.isal_zlib.crc32``, zlib's values at about 20 GB/s on one core against
zlib's 4): a subset of tens of samples, a few MB each, is read and checked in
milliseconds from the page cache, so a rerun checks every byte rather than trusting the
manifest and the sizes. On a remote DEST (an object store) the files are read
``jobs`` at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from isal.isal_zlib import crc32

from ..fsutil import Files, is_local, join
from ..mirror.transfer import read_blocks

BLOCK = 1 << 20
"""Bytes read at a time (one buffer per file being read)."""

Kind = Literal["crc32", "size", "missing", "unreadable"]


@dataclass(frozen=True, kw_only=True)
class FileProblem:
    """A file of a chosen sample that DEST should hold intact and does not."""

    name: str
    kind: Kind
    """``crc32`` (same size, other bytes), ``size``, ``missing`` (the manifest records it,
    DEST lacks it) or ``unreadable``."""
    detail: str
    """Expected versus found, e.g. ``CRC-32 0x1a2b3c4d, the member's is 0x5e6f7a8b``."""


def file_crc32(fs: Files, path: str, block: int = BLOCK) -> tuple[int, int]:
    """``(size, CRC-32)`` of the file at ``path``, read in blocks of ``block`` bytes (a stop
    request raises :class:`~david_data.errors.JobInterrupted` between blocks)."""
    size = crc = 0
    with fs.open(path, "rb") as handle:
        for view in read_blocks(handle, block=block):
            crc = crc32(view, crc)
            size += len(view)
    return size, crc


def compare(name: str, expected: tuple[int, int], found: tuple[int, int]) -> FileProblem | None:
    """The problem of a file whose ``(size, CRC-32)`` is ``found`` (None: it is intact)."""
    if found[0] != expected[0]:
        return FileProblem(
            name=name,
            kind="size",
            detail=f"{found[0]} bytes, the member has {expected[0]}",
        )
    if found[1] != expected[1]:
        return FileProblem(
            name=name,
            kind="crc32",
            detail=f"CRC-32 0x{found[1]:08x}, the member's is 0x{expected[1]:08x}",
        )
    return None


def list_files(fs: Files, folder: str) -> dict[str, int]:
    """The files in ``folder`` (name -> size); empty when there is no such folder."""
    try:
        entries = fs.ls(folder, detail=True)
    except FileNotFoundError:
        return {}
    return {
        e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
        for e in entries
        if e.get("type") == "file"
    }


def read_all(
    fs: Files, folder: str, names: Iterable[str], *, jobs: int
) -> Iterator[tuple[str, tuple[int, int] | OSError]]:
    """``(name, (size, CRC-32) or the OSError reading it)`` of each file ``names`` in
    ``folder``, in order: one after the other on a local disk (the page cache is faster
    than a thread hand-off), ``jobs`` at once elsewhere."""

    def read(name: str) -> tuple[str, tuple[int, int] | OSError]:
        try:
            return name, file_crc32(fs, join(folder, name))
        except OSError as exc:
            return name, exc

    names = list(names)
    if is_local(fs) or jobs <= 1 or len(names) <= 1:
        yield from map(read, names)
        return
    with ThreadPoolExecutor(min(jobs, len(names)), thread_name_prefix="fetch-check") as pool:
        yield from pool.map(read, names)


def check_present(
    fs: Files,
    folder: str,
    expected: Mapping[str, tuple[int, int]],
    on_disk: Mapping[str, int],
    recorded: Mapping[str, tuple[int, int]],
    *,
    jobs: int = 8,
    read: bool = True,
) -> tuple[dict[str, tuple[int, int]], list[FileProblem]]:
    """Which files ``expected`` (name -> the member's size and CRC-32) ``folder`` holds
    intact, and the problems of the others that it holds or that the manifest records.

    ``on_disk`` is the folder's listing (name -> size), ``recorded`` the manifest's
    (name -> size, CRC-32). A file the manifest records with another size or CRC-32 than
    the member has now is stale (its part changed on the server): it is fetched again
    with no problem reported. Returns ``(known, problems)``: ``known`` maps each intact
    file to its size and CRC-32 as read. ``read=False`` checks presence and sizes only
    (``verify --quick``): no file is read, so none is known.
    """
    known: dict[str, tuple[int, int]] = {}
    problems: list[FileProblem] = []
    to_read = []
    for name in sorted(expected):
        want = expected[name]
        stale = name in recorded and recorded[name] != want
        size = on_disk.get(name)
        if size is None:
            if name in recorded and not stale:
                problems.append(
                    FileProblem(
                        name=name,
                        kind="missing",
                        detail="the fetch manifest records it, DEST does not hold it",
                    )
                )
            continue
        if size != want[0]:  # no need to read it
            problem = compare(name, want, (size, 0))
            if problem is not None and not stale:
                problems.append(problem)
            continue
        if read:
            to_read.append(name)
    for name, found in read_all(fs, folder, to_read, jobs=jobs):
        if isinstance(found, OSError):
            problems.append(
                FileProblem(
                    name=name,
                    kind="unreadable",
                    detail=f"cannot be read ({found.strerror or found})",
                )
            )
            continue
        problem = compare(name, expected[name], found)
        if problem is None:
            known[name] = found
        elif name not in recorded or recorded[name] == expected[name]:
            problems.append(problem)
    return known, problems


__all__ = [
    "BLOCK",
    "FileProblem",
    "check_present",
    "compare",
    "file_crc32",
    "list_files",
    "read_all",
]
