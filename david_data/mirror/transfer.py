"""Shared state of one file's segmented download, and a reader that follows it.

:class:`Transfer` hands byte ranges to the connections, records what each one wrote and
checkpoints the resume state; :class:`TransferReader` lets a check (SHA-256, the zip's
CRC-32s) read the file *while* it downloads, blocking until the bytes it asks for are
written, so verification finishes moments after the last byte lands instead of being a
second pass over the whole file.

Scheduling: the file's last ``TAIL_BYTES`` go first (a zip's central directory is at
its end, and the check reads it before anything else), then pieces in file order, so the
written prefix that the check reads grows steadily behind the connections. A connection
takes a near-equal share of what is left to fetch (``left / 2K`` of all unwritten bytes
with ``K`` connections, within ``[min_split, segment]``, so a round of ``K`` pieces takes
half of the rest): pieces shrink as the file fills, so that when the last byte lands only
a few MiB wait to be checked, in a few dozen requests per file; in the last round (under
``2K * min_split`` left) each takes ``left / K``, so all ``K`` connections finish
together instead of one dragging a whole segment alone.

Progress (see :mod:`.state`): every ``checkpoint_bytes`` written by all connections
together (or ``checkpoint_seconds``) the state file is advanced to what was written,
without syncing: a killed process leaves those bytes in the page cache. Every
``sync_bytes`` (or ``sync_seconds``), and as soon as the last byte is written, a
background thread flushes the data (``fdatasync``) and records it as durable, which is
all a resume after a reboot trusts. Connection threads never wait for a flush, and
little is left to flush when the check ends and the file may take its final name.

Stopping: a reader waiting for bytes polls :func:`david_data.engine.stop_requested` and
then :meth:`Transfer.interrupt` stops every connection; the caller checkpoints what was
written and reports the file as interrupted (the next run resumes it).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..engine.signals import stop_requested
from ..errors import JobInterrupted, RemoteChangedError
from .state import BOOT_ID, PartState, Segment, StateFile

TAIL_BYTES = 4 << 20
"""Fetched first: holds a part's central directory (~2.5 MB for 5,000 samples)."""
SYNC_BYTES = 8 << 20
SYNC_SECONDS = 10.0
"""How often written data is flushed and recorded as durable (what survives a reboot)."""


class TransferAborted(Exception):
    """The download stopped before the bytes a reader waits for were written."""


class Transfer:
    """Work queue, written-bytes ledger and checkpoints of one file (thread-safe)."""

    def __init__(
        self,
        part: Path,
        state_path: Path,
        state: PartState,
        *,
        connections: int,
        min_split: int,
        checkpoint_bytes: int,
        checkpoint_seconds: float,
        sync_bytes: int = SYNC_BYTES,
        sync_seconds: float = SYNC_SECONDS,
        single_stream: bool = False,
    ) -> None:
        self.part, self.state_path, self.state = part, state_path, state
        self.single_stream = single_stream
        """One plain GET for the whole file (a server that ignores Range): no tail first."""
        self.connections, self.min_split = connections, min_split
        self.checkpoint_bytes, self.checkpoint_seconds = checkpoint_bytes, checkpoint_seconds
        self.sync_bytes, self.sync_seconds = sync_bytes, sync_seconds
        self.fd = os.open(part, os.O_RDWR)
        self._state_file = StateFile(state_path, state)
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.running = 0
        """Connections still working; a reader stops waiting when none is left."""
        self._written = {id(s): s.done for s in state.segments}
        self._left = sum(s.length - s.done for s in state.segments if not s.complete)
        """Bytes not written yet (all connections' pieces and those not handed out)."""
        todo = [s for s in state.segments if not s.complete]
        if not single_stream and todo and todo[-1].length - todo[-1].done > TAIL_BYTES + min_split:
            todo.append(self._split(todo[-1], todo[-1].end + 1 - TAIL_BYTES))
        self._pending = deque(todo[-1:] + todo[:-1])
        self._want = (0, 0, 0)
        """(offset, count, first byte missing) a reader waits for; count 0: none waits."""
        self._unrecorded = self._unsynced = 0
        self._last_record = time.monotonic()
        self._record_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._sync_wanted = threading.Event()
        self._syncer: threading.Thread | None = None
        self._closing = False

    @property
    def has_work(self) -> bool:
        return bool(self._pending)

    def written(self, segment: Segment) -> int:
        """Bytes of ``segment`` written so far (not necessarily flushed)."""
        return self._written[id(segment)]

    def take(self) -> Segment | None:
        """The next range to fetch, or None when none is left (see module docstring)."""
        with self.cond:
            if not self._pending or self.stop.is_set():
                return None
            segment = self._pending.popleft()
            if self.connections > 1 and not self.single_stream:
                done = self._written[id(segment)]
                share = self._share()
                if segment.length - done >= share + self.min_split:
                    self._pending.appendleft(self._split(segment, segment.start + done + share))
            return segment

    def _share(self) -> int:
        """Bytes the next piece should hold (see module docstring)."""
        k, left = self.connections, self._left
        if left <= 2 * k * self.min_split:  # the last round: everyone ends together
            return max(self.min_split, -(-left // k))
        return max(self.min_split, -(-left // (2 * k)))

    def _split(self, segment: Segment, cut: int) -> Segment:
        """Cut the not-yet-started ``[cut, end]`` off ``segment`` as a new segment."""
        rest = Segment(start=cut, end=segment.end)
        segment.end = cut - 1
        segments = self.state.segments
        segments.insert(bisect.bisect_left(segments, cut, key=lambda s: s.start), rest)
        self._written[id(rest)] = 0
        return rest

    def wrote(self, segment: Segment, n: int) -> None:
        """Record ``n`` more bytes of ``segment`` written; checkpoint when one is due."""
        with self.cond:
            written = self._written[id(segment)] = self._written[id(segment)] + n
            self._left -= n
            self._unrecorded += n
            self._unsynced += n
            offset, count, frontier = self._want
            if count and segment.start <= frontier < segment.start + written:
                have = self.available(offset)  # this write moved the reader's frontier
                if have >= count:
                    self.cond.notify_all()
                else:
                    self._want = (offset, count, offset + have)
            record = self._unrecorded >= self.checkpoint_bytes
            sync = self._unsynced >= self.sync_bytes or not self._left  # the last byte: flush
        if sync:
            self._sync_wanted.set()
        if record or time.monotonic() - self._last_record >= self.checkpoint_seconds:
            if BOOT_ID is None:  # written bytes count only once flushed (see .state)
                self._sync_wanted.set()
            else:
                self.record(wait=False)

    def record(self, *, wait: bool = True) -> None:
        """Advance the state file to the bytes written so far (no flush; see .state).

        With ``wait=False`` a record already being written by another thread is enough.
        """
        if not self._record_lock.acquire(blocking=wait):
            return
        try:
            with self.cond:
                for segment in self.state.segments:
                    segment.done = self._written[id(segment)]
                self._unrecorded = 0
                self._last_record = time.monotonic()
                data = self.state.to_json()
            self._state_file.write(data)
        finally:
            self._record_lock.release()

    def checkpoint(self, *, wait: bool = True) -> None:
        """Flush the data, then record it as durable (and everything written as done).

        With ``wait=False`` a checkpoint already running in another thread is enough.
        """
        if not self._sync_lock.acquire(blocking=wait):
            return
        try:
            with self.cond:
                snapshot = dict(self._written)
                self._unsynced = 0
            os.fdatasync(self.fd)
            with self.cond:
                for segment in self.state.segments:
                    segment.durable = snapshot.get(id(segment), segment.durable)
            self.record()
            with self._record_lock:  # flushed apart, so records go on meanwhile
                fd = self._state_file.duplicate()
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        finally:
            self._sync_lock.release()

    def start_syncing(self) -> None:
        """Flush in a background thread every ``sync_bytes`` or ``sync_seconds``."""
        self._syncer = threading.Thread(
            target=self._sync_loop, name=f"sync-{self.part.name}", daemon=True
        )
        self._syncer.start()

    def _sync_loop(self) -> None:
        while True:
            self._sync_wanted.wait(self.sync_seconds)
            self._sync_wanted.clear()
            if self._closing:
                return
            if self._unsynced:
                try:
                    self.checkpoint()
                except OSError as exc:  # the disk failed: the writes will fail too
                    self.fail(exc)
                    return

    def stop_syncing(self) -> None:
        """End the background flushes (the caller then checkpoints once more)."""
        self._closing = True
        self._sync_wanted.set()
        if self._syncer is not None:
            self._syncer.join()

    def fail(self, exc: BaseException) -> None:
        """Stop every connection; the first error wins, except that a changed remote
        (which restarts the file) wins over anything else."""
        with self.cond:
            if self.error is None or (
                isinstance(exc, RemoteChangedError)
                and not isinstance(self.error, RemoteChangedError)
            ):
                self.error = exc
            self.stop.set()
            self.cond.notify_all()

    def interrupt(self) -> None:
        """Stop every connection because a stop was requested (their progress is kept)."""
        self.fail(JobInterrupted("stopped on request; the next run resumes here"))

    def worker_exited(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify_all()

    def close_file(self) -> None:
        self.stop_syncing()
        os.close(self.fd)
        self._state_file.close()

    def available(self, offset: int) -> int:
        """Contiguous bytes written from ``offset`` on (call with ``cond`` held)."""
        segments = self.state.segments
        i = bisect.bisect_right(segments, offset, key=lambda s: s.start) - 1
        pos = offset
        while 0 <= i < len(segments):
            segment = segments[i]
            reach = segment.start + self._written[id(segment)]
            if pos < segment.start or pos >= reach:
                break
            pos = reach
            if reach <= segment.end:
                break
            i += 1
        return pos - offset

    def wait_for(self, offset: int, count: int) -> int:
        """Block until ``count`` bytes from ``offset`` are written; return how many are.

        Raises :class:`TransferAborted` when the download failed or ended first.
        """
        while True:
            with self.cond:
                have = self.available(offset)
                if have >= count:
                    return have
                if self.error is not None or self.running <= 0:
                    raise TransferAborted(
                        f"{self.part.name}: the download stopped before byte {offset + count}"
                    )
                self._want = (offset, count, offset + have)  # a writer wakes us then
                self.cond.wait(0.2)
                self._want = (0, 0, 0)
            if stop_requested():
                self.interrupt()


def read_blocks(
    handle: BinaryIO, size: int | None = None, block: int = 8 << 20
) -> Iterator[memoryview]:
    """The bytes of ``handle`` from its position up to ``size`` (None: its end), in order,
    as views of at most ``block`` bytes, each valid until the next is asked for (flat
    memory).

    Any file is read into one reusable buffer (a :class:`TransferReader` waits for each
    block to be written). A stop request raises :class:`~david_data.errors.JobInterrupted`
    between blocks.
    """
    buffer = memoryview(bytearray(block if size is None else min(block, max(size, 1))))
    pos = handle.tell()
    while size is None or pos < size:
        if stop_requested():
            raise JobInterrupted("stopped on request while reading a file; the next run resumes")
        view = buffer if size is None else buffer[: size - pos]
        n = handle.readinto(view)  # type: ignore[attr-defined]  # BinaryIO lacks readinto
        if not n:
            return
        yield buffer[:n]
        pos += n


class TransferReader:
    """Read-only binary file over a :class:`Transfer` in progress.

    ``read(n)`` returns all ``n`` bytes (fewer only at the end of the file), waiting
    for them; :meth:`readinto` returns as soon as at least ``min_read`` bytes (or the
    rest of the file) are there, so a sequential check keeps up with the download.
    """

    def __init__(self, transfer: Transfer, size: int, *, min_read: int = 1 << 20) -> None:
        self.transfer, self.size, self.min_read = transfer, size, min_read
        self.pos = 0
        self._fd = os.open(transfer.part, os.O_RDONLY)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: memoryview) -> int:
        """Read into ``buffer`` what has been written from the position on, waiting for at
        least ``min_read`` bytes (or the rest of the file): 0 only at the end of the file.

        Read, not mapped: hashing a view of a mapping faults its pages in one by one,
        and SHA-256 over a mapped file cost 0.85 CPU s/GB here against 0.69 for
        ``pread`` into a 1 MiB buffer plus the hash (the buffer stays in the CPU's cache).
        """
        want = min(len(buffer), self.size - self.pos)
        if want <= 0:
            return 0
        have = self.transfer.wait_for(self.pos, min(want, self.min_read))
        n = os.preadv(self._fd, [buffer[: min(want, have)]], self.pos)
        if n <= 0:
            raise OSError(f"{self.transfer.part} ended at byte {self.pos}, before {self.size}")
        self.pos += n
        return n

    def read(self, n: int = -1) -> bytes:
        want = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        if want <= 0:
            return b""
        self.transfer.wait_for(self.pos, want)
        data = os.pread(self._fd, want, self.pos)
        self.pos += len(data)
        return data

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> TransferReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
