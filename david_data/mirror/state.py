"""The per-part resume state file, kept beside the ``.part`` data.

``NAME.part`` holds the bytes at their final offsets; ``NAME.state`` (JSON) records the
remote identity (URL, size, ETag, Last-Modified) and, per segment, how many bytes from
its start are durably on disk. It is written before the first body byte is requested
and advanced only after the data it covers has been flushed (fdatasync), so a killed run
never trusts bytes that did not land. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

STATE_VERSION = 1


@dataclass(kw_only=True)
class Segment:
    """A closed byte range ``[start, end]`` of which ``done`` bytes are on disk."""

    start: int
    end: int
    done: int = 0

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
        return {
            "version": STATE_VERSION,
            "url": self.url,
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "content_md5": self.content_md5,
            "segments": [[s.start, s.end, s.done] for s in self.segments],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PartState:
        rows = cast(list[list[int]], data["segments"])
        segments = [Segment(start=a, end=b, done=d) for a, b, d in rows]
        return cls(
            url=str(data["url"]),
            size=int(data["size"]),  # type: ignore[call-overload]
            etag=data.get("etag"),  # type: ignore[arg-type]
            last_modified=data.get("last_modified"),  # type: ignore[arg-type]
            content_md5=data.get("content_md5"),  # type: ignore[arg-type]
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


def load_state(path: Path) -> PartState | None:
    """Read a state file; None when missing or unreadable (the part then restarts)."""
    try:
        data = json.loads(path.read_text())
        if data.get("version") != STATE_VERSION:
            return None
        return PartState.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


_write_lock = threading.Lock()


def save_state(path: Path, state: PartState) -> None:
    """Atomically replace the state file."""
    text = json.dumps(state.to_json(), separators=(",", ":"))
    tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
    with _write_lock:
        tmp.write_text(text)
        os.replace(tmp, path)
