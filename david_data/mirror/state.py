"""The per-part resume state file, kept beside the ``.part`` data.

``NAME.part`` holds the bytes at their final offsets; ``NAME.state`` records the remote
identity (URL, size, ETag, Last-Modified) and, per segment, how many bytes from its start
were written (``done``) and how many of those are known flushed to disk (``durable``,
advanced only after an ``fdatasync``). It is written before the first body byte is
requested.

Which count a resume trusts: a killed process leaves its written bytes in the page
cache, so within the same boot (the Linux boot id recorded in the file matches) ``done``
is trusted; after a reboot (or where the boot id is unknown) only ``durable`` is. A run
therefore records ``done`` often and cheaply, without syncing, and syncs rarely: a
killed process re-fetches little, and a crashed machine loses only unsynced progress,
never accepts bytes that did not land (the final SHA-256 and CRC-32 checks guard the
file as well).

The file: two equal slots, each a JSON record with a sequence number, a CRC-32 line
and space padding. :class:`StateFile` overwrites the older slot in place (one
``pwrite``, microseconds, where creating and renaming a file costs ~0.3 ms of CPU), so
a write torn by a kill or a crash leaves the other slot, one record older, to resume
from. A new file, or one that must grow, is written whole and renamed into place.
Files of version 1 (one plain JSON record, ``done`` flushed) are still read.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from isal.isal_zlib import crc32  # zlib's CRC-32 (same values), by ISA-L

STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_PAGE = 4096


def _read_boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


BOOT_ID = _read_boot_id()
"""This boot of the machine (Linux); None where it cannot be told."""


@dataclass(kw_only=True)
class Segment:
    """A closed byte range ``[start, end]``: ``done`` bytes from its start written,
    ``durable`` of them flushed to disk."""

    start: int
    end: int
    done: int = 0
    durable: int = 0

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def complete(self) -> bool:
        return self.done >= self.length


@dataclass(kw_only=True)
class PartState:
    url: str
    size: int
    etag: str | None
    last_modified: str | None
    content_md5: str | None
    segments: list[Segment] = field(default_factory=list)

    @property
    def bytes_done(self) -> int:
        return sum(min(s.done, s.length) for s in self.segments)

    @property
    def complete(self) -> bool:
        return all(s.complete for s in self.segments)

    def matches(self, *, size: int, etag: str | None) -> bool:
        """True when the recorded remote identity is still the remote's."""
        return self.size == size and self.etag == etag

    def to_json(self) -> dict[str, object]:
        """The state as JSON data; adjacent segments flushed whole are merged."""
        rows: list[list[int]] = []
        for s in self.segments:
            last = rows[-1] if rows else None
            if last and s.durable == s.length and last[3] == last[1] - last[0] + 1:
                last[1], last[2], last[3] = s.end, s.end - last[0] + 1, s.end - last[0] + 1
            else:
                rows.append([s.start, s.end, s.done, s.durable])
        return {
            "version": STATE_VERSION,
            "url": self.url,
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "content_md5": self.content_md5,
            "boot_id": BOOT_ID,
            "segments": rows,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartState:  # a parsed, unvalidated JSON record
        rows = cast(list[list[int]], data["segments"])
        if data.get("version") == 1:  # its ``done`` was flushed before it was recorded
            rows = [[a, b, d, d] for a, b, d in rows]
        # Written bytes survive a killed process (the page cache keeps them), not a reboot.
        same_boot = BOOT_ID is not None and data.get("boot_id") == BOOT_ID
        segments = [
            Segment(start=a, end=b, done=d if same_boot else u, durable=u) for a, b, d, u in rows
        ]
        return cls(
            url=str(data["url"]),
            size=int(data["size"]),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            content_md5=data.get("content_md5"),
            segments=segments,
        )


def plan_segments(size: int, connections: int, segment_size: int) -> list[Segment]:
    """Split ``[0, size)`` into closed ranges of at most ``segment_size`` bytes.

    Small files are split so that every connection gets work; an empty file has no
    segment.
    """
    if size <= 0:
        return []
    per_connection = -(-size // max(1, connections))
    step = max(1, min(segment_size, per_connection))
    return [Segment(start=a, end=min(a + step, size) - 1) for a in range(0, size, step)]


def _from_data(data: dict[str, object]) -> PartState | None:
    """The state in ``data``; None unless its segments tile the file exactly."""
    if data.get("version") not in _READABLE_VERSIONS:
        return None
    state = PartState.from_json(data)
    at = 0
    for s in state.segments:
        if s.start != at or not 0 <= s.durable <= s.done <= s.length:
            return None
        at = s.end + 1
    return state if at == state.size else None


def _slot_bytes(data: dict[str, object], seq: int, size: int | None = None) -> bytes:
    """One slot: the record, its CRC-32, padding up to ``size`` (when given)."""
    text = json.dumps({**data, "seq": seq}, separators=(",", ":")).encode()
    record = text + b"\n%08x\n" % crc32(text)
    return record if size is None else record.ljust(size, b" ")


def _parse_slot(slot: bytes) -> dict[str, object] | None:
    text, _, check = slot.rstrip(b" ").rstrip(b"\n").rpartition(b"\n")
    if not text or check != b"%08x" % crc32(text):
        return None
    data = json.loads(text)
    return data if isinstance(data, dict) else None


def load_state(path: Path) -> PartState | None:
    """Read a state file; None when missing or unreadable (the part then restarts)."""
    try:
        raw = path.read_bytes()
        try:
            return _from_data(json.loads(raw))  # version 1: one plain record
        except ValueError:
            pass
        half = len(raw) // 2
        slots = [_parse_slot(raw[:half]), _parse_slot(raw[half:])]
        found = [d for d in slots if d is not None]
        if not found:
            return None
        return _from_data(max(found, key=lambda d: cast(int, d.get("seq", -1))))
    except (OSError, ValueError, KeyError, TypeError):
        return None


_write_lock = threading.Lock()


def _replace(path: Path, data: dict[str, object], seq: int) -> int:
    """Write a fresh two-slot file holding ``data`` and rename it into place; returns
    the slot size."""
    size = -(-(len(_slot_bytes(data, seq)) * 2 + 64) // _PAGE) * _PAGE
    slot = _slot_bytes(data, seq, size)
    tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
    with _write_lock:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, slot + slot, 0)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    return size


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def save_state(path: Path, state: PartState) -> None:
    """Atomically replace the state file with ``state``."""
    _replace(path, state.to_json(), 0)


class StateFile:
    """The state file of a download in progress, rewritten in place (see module
    docstring). Not thread-safe: one writer at a time."""

    def __init__(self, path: Path, state: PartState) -> None:
        self.path = path
        self.seq = 0
        self.slot_size = _replace(path, state.to_json(), self.seq)
        self.fd = os.open(path, os.O_WRONLY)

    def write(self, data: dict[str, object]) -> None:
        """Record ``data`` (a :meth:`PartState.to_json`) over the older slot."""
        self.seq += 1
        slot = _slot_bytes(data, self.seq)
        if len(slot) > self.slot_size:  # grown: a new, larger file
            os.close(self.fd)
            self.slot_size = _replace(self.path, data, self.seq)
            self.fd = os.open(self.path, os.O_WRONLY)
            return
        _write_all(self.fd, slot.ljust(self.slot_size, b" "), (self.seq % 2) * self.slot_size)

    def duplicate(self) -> int:
        """A new descriptor of the file, to flush it while records go on."""
        return os.dup(self.fd)

    def close(self) -> None:
        os.close(self.fd)
