"""Read zip members out of a part by coalesced ranged requests, each verified as it streams.

:func:`coalesce` groups members (sorted by offset) into ranges: neighbours whose records
are less than ``max_gap`` bytes apart share one request (the coalescing convert uses too,
:func:`david_data.zipformat.coalesce_spans`). :func:`read_members` reads the ranges one
after the other (:func:`.remote.read_range`: closed ranges, ``If-Match``, retries that
resume), routes each range's bytes as they arrive to the members inside it
(:class:`~.member.MemberStream`: local header, inflate, size, CRC-32) and hands each
verified member to ``on_member``. A member that fails verification is read once more on
its own, then reported with its reason. A part that changed on the server, or a stop
request, ends the reading early (the outcome says which); a server that ignores ranges
raises :class:`~david_data.errors.RangeNotSupportedError`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DownloadError, RangeNotSupportedError, RemoteChangedError, VerificationError
from ..net.retry import RetryPolicy
from ..zipformat import coalesce_spans
from .member import MemberStream, MemberTask
from .remote import PartVersion, Stopped, read_range

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FetchRange:
    """One ranged request: bytes ``start`` ... ``end`` (inclusive) and the members in it."""

    start: int
    end: int
    members: tuple[MemberTask, ...]


def coalesce(tasks: Sequence[MemberTask], max_gap: int, max_bytes: int) -> list[FetchRange]:
    """Group members into ranges (see the module docstring); a range grows past
    ``max_bytes`` only to hold a single larger member."""
    spans = coalesce_spans(
        tasks, lambda t: (t.offset, t.end_offset), max_gap=max_gap, max_bytes=max_bytes
    )
    return [FetchRange(start=s, end=e - 1, members=tuple(group)) for s, e, group in spans]


@dataclass(kw_only=True)
class ReadOutcome:
    """What :func:`read_members` did besides handing members on."""

    received: int = 0
    """Bytes received (retries and gaps included)."""
    failed: list[tuple[MemberTask, str]] = field(default_factory=list)
    """Members that failed twice, or could not be read, with the reason."""
    changed: bool = False
    """The part changed on the server: members not handed on were left unread."""
    stopped: bool = False
    """A stop was requested: members not handed on were left unread."""


class _Router:
    """Hands a range's bytes, as they stream, to the members that lie in it."""

    def __init__(
        self, start: int, members: tuple[MemberTask, ...], done: Callable[[MemberStream], None]
    ) -> None:
        self.pos = start
        self.streams = [MemberStream(m) for m in members]
        self.i = 0
        self.done = done

    def feed(self, data: memoryview) -> None:
        at, n = 0, len(data)
        while at < n and self.i < len(self.streams):
            stream = self.streams[self.i]
            task = stream.task
            if self.pos >= task.end_offset:
                self._next()
                continue
            room = min(n - at, task.end_offset - self.pos)
            if self.pos < task.offset:
                step = min(room, task.offset - self.pos)  # a gap between records
            elif stream.done:
                step = room  # what follows the data (a data descriptor)
            else:
                step = stream.feed(data[at : at + room])
                if stream.done:
                    self.done(stream)
            at += step
            self.pos += step

    def _next(self) -> None:
        stream = self.streams[self.i]
        if not stream.done:
            self.done(stream)  # its record ended early: result() says how
        self.i += 1

    def close(self) -> list[MemberStream]:
        """Finish the members the bytes did not complete; returns the unfinished ones."""
        left = [s for s in self.streams[self.i :] if not s.done]
        for stream in left:
            self.done(stream)
        return left


def read_members(
    url: str,
    version: PartVersion,
    ranges: Sequence[FetchRange],
    *,
    on_member: Callable[[MemberTask, bytes], None],
    policy: RetryPolicy,
    storage_options: dict[str, Any] | None = None,
) -> ReadOutcome:
    """Read ``ranges`` of the part at ``url`` and hand each verified member to
    ``on_member(task, content)`` (see the module docstring)."""
    outcome = ReadOutcome()
    retry: list[MemberTask] = []

    def finish(stream: MemberStream, *, last_try: bool) -> None:
        try:
            data = stream.result()
        except VerificationError as exc:
            if last_try:
                outcome.failed.append((stream.task, exc.message.split(": ", 1)[-1]))
            else:
                logger.info("%s: %s; reading it again", url, exc.message)
                retry.append(stream.task)
            return
        on_member(stream.task, data)

    attempts = [(r.start, r.end, r.members, False) for r in ranges]
    while attempts:
        start, end, members, last_try = attempts.pop(0)
        router = _Router(start, members, functools.partial(finish, last_try=last_try))
        try:
            outcome.received += read_range(
                url,
                start,
                end,
                router.feed,
                expect=version,
                policy=policy,
                storage_options=storage_options,
            )
        except RemoteChangedError as exc:
            logger.info("%s", exc)
            outcome.changed = True
            break
        except Stopped:
            outcome.stopped = True
            break
        except DownloadError as exc:
            if isinstance(exc, RangeNotSupportedError):
                raise
            outcome.failed += [(s.task, str(exc)) for s in router.streams if not s.done]
            continue
        router.close()
        if not attempts and retry:
            attempts = [(t.offset, t.end_offset - 1, (t,), True) for t in retry]
            retry = []
    return outcome
