"""Segmented, resumable download of one remote file into a local ``.part`` file.

``K`` threads take closed byte ranges (segments) from a :class:`~.transfer.Transfer`
and write what has arrived at its offset as soon as it has arrived (``splice`` from a plain
TCP socket, see :mod:`._splice`; ``pwrite`` from a buffer over TLS); memory is one
``chunk_size`` buffer (or pipe) per connection, and a connection is kept alive from one
range to the next. Meanwhile the caller's check (SHA-256, CRC-32s) reads the file
as it lands, in one sequential pass, so verification ends moments after the last byte.
Resume follows the state file (see :mod:`.state`): every request is a closed range with
``If-Match: <recorded ETag>``, and a reply is accepted only if it is a 206 whose
Content-Range (start, end, total) and ETag match. A changed ETag or size, or a 412
restart the file cleanly (logged); nothing is ever appended to bytes of another version.

A server that ignores Range (answers a ranged request with 200 and the whole file, as
``python -m http.server`` does) is downloaded in one plain stream per file instead: no
resume within the file, said once per host in the log, still checked as it lands. With
``require_ranges`` such a server is an error.

Stopping: connections poll :func:`david_data.engine.stop_requested` between chunks; the
file is then checkpointed and :class:`~david_data.errors.JobInterrupted` raised.
"""

from __future__ import annotations

import errno
import functools
import http.client
import logging
import os
import select
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..engine.signals import stop_requested
from ..errors import (
    DavidDataError,
    DownloadError,
    InsufficientSpaceError,
    JobInterrupted,
    PermanentDownloadError,
    RangeNotSupportedError,
    RemoteChangedError,
)
from ..net.http import (
    HttpClient,
    RemoteInfo,
    check_partial_reply,
    head_with_retries,
    raise_for_status,
)
from ..net.retry import Retries, RetryPolicy, pause
from ._splice import Splicer, can_splice
from .state import PartState, Segment, load_state, plan_segments, save_state
from .transfer import Transfer, TransferAborted, TransferReader

logger = logging.getLogger(__name__)

MiB = 1 << 20
T = TypeVar("T")

_told_single_stream: set[str] = set()
_told_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """How one file is fetched."""

    segments: int = 4
    """Ranged connections used at once for one file."""
    segment_size: int = 32 * MiB
    """Largest byte range asked for in one request (smaller files are split evenly)."""
    min_split: int = 1 * MiB
    """Smallest share of the rest a connection takes near the end of a file."""
    chunk_size: int = 1 * MiB
    """Largest read from the socket at a time (the per-connection buffer); each read
    takes what has arrived and is written at once."""
    checkpoint_bytes: int | None = None
    """Advance the state file (without syncing; see :mod:`.state`) after this many bytes
    written by all connections together; default ``min(512 KiB, segment_size // 4)``, so
    a killed process re-fetches about half that per file, beyond what its sockets held."""
    checkpoint_seconds: float = 1.0
    require_ranges: bool = False
    """Fail (instead of falling back to one stream) when the server ignores Range."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if min(self.segments, self.segment_size, self.chunk_size, self.min_split) < 1:
            raise ValueError("segments, segment_size, chunk_size and min_split must be positive")


@dataclass(kw_only=True)
class FetchStats:
    """Counters of one fetch (updated from several threads under ``lock``)."""

    bytes_fetched: int = 0
    bytes_resumed: int = 0
    retries: int = 0
    restarts: int = 0
    repairs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


class _RangesIgnored(Exception):
    """The server answered a ranged request with the whole (unchanged) file."""


def part_paths(base: Path) -> tuple[Path, Path]:
    """The ``.part`` data file and ``.state`` file used while ``base`` downloads."""
    return base.with_name(base.name + ".part"), base.with_name(base.name + ".state")


def remove_partial(part: Path, state: Path) -> None:
    """Delete a part's data and state (a clean restart)."""
    for path in (state, part):
        path.unlink(missing_ok=True)


def _say_single_stream(url: str) -> None:
    host = urllib.parse.urlsplit(url).netloc
    with _told_lock:
        if host in _told_single_stream:
            return
        _told_single_stream.add(host)
    logger.warning(
        "%s ignores Range requests: downloading each file in one stream (no resume within "
        "a file; every byte is still verified)",
        host,
    )


def fetch_file(
    url: str,
    target: Path,
    *,
    client: HttpClient,
    check: Callable[[BinaryIO, RemoteInfo], T],
    options: FetchOptions = FetchOptions(),  # noqa: B008
    on_bytes: Callable[[int], None] | None = None,
    stats: FetchStats | None = None,
    info: RemoteInfo | None = None,
) -> tuple[RemoteInfo, T]:
    """Download ``url`` into ``target.part`` (resuming from ``target.state``) and check it.

    ``check(reader, info)`` runs while the file downloads: ``reader`` is a binary file
    whose reads wait for the bytes they ask for (see :mod:`.transfer`), so a single
    sequential pass verifies the file as it lands. Returns the remote identity the bytes
    belong to and what ``check`` returned; the ``.part`` file is complete and flushed
    but NOT renamed: the caller judges the check and moves it into place.
    ``on_bytes`` is called with the size of each chunk received (progress); ``info``
    skips the first HEAD. Raises :class:`JobInterrupted` (progress checkpointed) when a
    stop is requested.
    """
    stats = stats or FetchStats()
    part, state_path = part_paths(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    policy = options.policy
    single = False
    ignored = 0
    while True:
        if info is None:
            info = head_with_retries(
                client, url, policy, on_retry=functools.partial(stats.add, retries=1)
            )
        state = load_state(state_path)
        if state is not None and not (
            state.matches(size=info.size, etag=info.etag)
            and part.exists()
            and part.stat().st_size == info.size
        ):
            logger.warning(
                "%s: the remote file changed since the last run (size %s -> %s, ETag %s -> %s); "
                "restarting it cleanly",
                target.name,
                state.size,
                info.size,
                state.etag,
                info.etag,
            )
            remove_partial(part, state_path)
            state = None
            stats.add(restarts=1)
        if state is None:
            segments = (
                [Segment(start=0, end=info.size - 1)]
                if single and info.size
                else plan_segments(info.size, options.segments, options.segment_size)
            )
            state = PartState(
                url=info.url,
                size=info.size,
                etag=info.etag,
                last_modified=info.last_modified,
                content_md5=info.content_md5,
                segments=segments,
            )
            with open(part, "wb") as handle:
                _allocate(handle, info.size, url)
            save_state(state_path, state)  # before the first body byte
        else:
            stats.add(bytes_resumed=state.bytes_done)
        remote: RemoteInfo = info

        def check_this(reader: BinaryIO, remote: RemoteInfo = remote) -> T:
            return check(reader, remote)

        try:
            result = _fetch_and_check(
                url, part, state_path, state, client, options, on_bytes, stats, check_this, single
            )
            return info, result
        except _RangesIgnored as exc:
            stats.add(restarts=1)
            remove_partial(part, state_path)
            ignored += 1
            if ignored == 1:  # a proxy's hiccup, or a server that never honours Range?
                logger.warning("%s: a ranged request got the whole file; restarting it", url)
                continue
            if options.require_ranges:
                raise RangeNotSupportedError(
                    f"{url}: the server ignores Range requests (it answers them with the whole "
                    "file), and --require-ranges was given; drop --require-ranges to download "
                    "each part in one stream instead",
                    url=url,
                ) from exc
            _say_single_stream(url)
            single = True
        except RemoteChangedError as exc:
            stats.add(restarts=1)
            remove_partial(part, state_path)
            if stats.restarts > policy.max_restarts:
                raise PermanentDownloadError(
                    f"{target.name}: restarted {stats.restarts} times because the remote file "
                    f"kept changing; last reason: {exc}",
                    url=url,
                ) from exc
            logger.warning("%s: %s; restarting this file cleanly", target.name, exc)
            info = None


def _fetch_and_check(
    url: str,
    part: Path,
    state_path: Path,
    state: PartState,
    client: HttpClient,
    options: FetchOptions,
    on_bytes: Callable[[int], None] | None,
    stats: FetchStats,
    check: Callable[[BinaryIO], T],
    single: bool,
) -> T:
    """Run the connections in threads and ``check`` in this one, over the same file."""
    checkpoint_bytes = options.checkpoint_bytes or max(
        16 * 1024, min(MiB // 2, options.segment_size // 4)
    )
    connections = 1 if single else options.segments
    transfer = Transfer(
        part,
        state_path,
        state,
        connections=connections,
        min_split=options.min_split,
        checkpoint_bytes=checkpoint_bytes,
        checkpoint_seconds=options.checkpoint_seconds,
        single_stream=single,
    )
    workers = connections if transfer.has_work else 0
    threads = [
        threading.Thread(
            target=_worker,
            args=(transfer, url, client, options, on_bytes, stats),
            name=f"fetch-{part.name}-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    transfer.running = workers
    try:
        for thread in threads:
            thread.start()
        if workers:
            transfer.start_syncing()
        with TransferReader(transfer, state.size) as reader:
            try:
                result = check(reader)  # type: ignore[arg-type]  # a TransferReader is a binary file
            except TransferAborted:
                result = None
            except BaseException as exc:
                transfer.fail(exc)
                raise
        if result is None and stop_requested():
            transfer.interrupt()
        stopping = isinstance(transfer.error, JobInterrupted)
        for thread in threads:  # a check that stopped early still gets a whole file
            thread.join(timeout=5.0 if stopping else None)
        if transfer.error is not None:
            raise transfer.error
        if workers:
            transfer.stop_syncing()
            transfer.checkpoint()  # the data is on disk before it can be renamed
    finally:
        transfer.stop.set()
        interrupted = isinstance(transfer.error, JobInterrupted)
        for thread in threads:
            thread.join(timeout=5.0 if interrupted else None)
        transfer.stop_syncing()
        if interrupted:
            transfer.checkpoint()  # what was written is kept for the next run
        # A connection stuck in a read past a stop may still write: leave the file open
        # (the process is ending) rather than let it write into a reused descriptor.
        if not any(thread.is_alive() for thread in threads):
            transfer.close_file()
    if not state.complete or result is None:  # pragma: no cover - defensive
        raise DownloadError(f"{part.name}: segments left unfinished", url=url)
    return result


def _worker(
    transfer: Transfer,
    url: str,
    client: HttpClient,
    options: FetchOptions,
    on_bytes: Callable[[int], None] | None,
    stats: FetchStats,
) -> None:
    buffer = bytearray(options.chunk_size)
    try:
        while (segment := transfer.take()) is not None:
            _fetch_segment(transfer, url, segment, buffer, client, options, on_bytes, stats)
    except BaseException as exc:  # noqa: BLE001 - handed to the caller by Transfer
        transfer.fail(exc)
    finally:
        client.close()
        transfer.worker_exited()


def _fetch_segment(
    transfer: Transfer,
    url: str,
    segment: Segment,
    buffer: bytearray,
    client: HttpClient,
    options: FetchOptions,
    on_bytes: Callable[[int], None] | None,
    stats: FetchStats,
) -> None:
    policy = options.policy
    state = transfer.state
    view = memoryview(buffer)
    retries = Retries(policy)
    while (done := transfer.written(segment)) < segment.length:
        if transfer.stop.is_set():
            return
        offset = segment.start + done
        headers = {} if transfer.single_stream else {"Range": f"bytes={offset}-{segment.end}"}
        if state.etag:
            headers["If-Match"] = state.etag
        progressed = 0
        try:
            _, response = client.request("GET", url, headers)
            try:
                if transfer.single_stream:
                    _check_whole_reply(url, response, state)
                    _skip(response, offset, view, url)
                else:
                    _check_ranged_reply(url, response, offset, segment.end, state)
            except BaseException:
                client.discard(url)
                raise
            remaining = segment.end - offset + 1
            body = _Body(response, remaining)
            try:
                while remaining > 0:
                    if transfer.stop.is_set() or stop_requested():
                        client.discard(url)
                        if not transfer.stop.is_set():
                            transfer.interrupt()
                        return
                    n = body.write_to(transfer.fd, offset + progressed, view, url)
                    if not n:
                        raise DownloadError(
                            f"{url}: connection closed with {remaining} bytes of bytes="
                            f"{offset}-{segment.end} still to come"
                        )
                    transfer.wrote(segment, n)
                    remaining -= n
                    progressed += n
                    if on_bytes is not None:
                        on_bytes(n)
            finally:
                body.close()
                stats.add(bytes_fetched=progressed)
            if transfer.single_stream:
                client.discard(url)  # whatever follows is not ours to read
            else:
                body.finish()
        except (RemoteChangedError, PermanentDownloadError):
            raise
        except DavidDataError as exc:
            if not isinstance(exc, DownloadError):
                raise
            _note_failure(transfer, url, client, exc, retries, progressed, stats, segment)
        except (OSError, http.client.HTTPException) as exc:
            _note_failure(transfer, url, client, exc, retries, progressed, stats, segment)


def _skip(response: http.client.HTTPResponse, count: int, view: memoryview, url: str) -> None:
    """Read and drop the first ``count`` bytes of a body (a stream resumed without Range)."""
    while count > 0:
        n = response.readinto(view[: min(len(view), count)])
        if not n:
            raise DownloadError(f"{url}: connection closed while skipping to byte {count}")
        count -= n


class _Body:
    """The rest of a reply's body, read straight from the connection's buffer.

    Each :meth:`read_into` waits for the first bytes, then takes whatever else has
    already arrived (as many reads as TLS records make it, up to the view's size) and
    returns: received bytes never wait for a buffer to fill (a kill loses only what the
    socket held), and bytes that came before a connection error are handed out first;
    the error is raised by the next read.

    :meth:`write_to` does the same into the file; on a plain TCP socket, once the
    bytes that ``http.client`` buffered with the headers are taken, it moves the rest
    with ``splice`` (see :mod:`._splice`: one copy instead of two). :meth:`close` after.
    """

    def __init__(self, response: http.client.HTTPResponse, left: int) -> None:
        self.response, self.left = response, left
        self._fp = None if response.chunked else response.fp
        self._error: BaseException | None = None
        self._ready = select.poll()
        self._splicer: Splicer | None = None
        self._sock = None
        if self._fp is not None:
            self._ready.register(self._fp.fileno(), select.POLLIN)
            sock = getattr(getattr(self._fp, "raw", None), "_sock", None)
            self._sock = sock if can_splice(sock) else None

    def write_to(self, fd: int, offset: int, view: memoryview, url: str) -> int:
        """Take what has arrived (at least one byte; 0 at a closed connection) and write
        it to ``fd`` at ``offset``; returns the bytes written."""
        if self._splicer is not None:
            n = self._splicer.move(fd, offset, self.left, url)
        elif self._sock is not None and self._fp is not None:
            # read1 returns what http.client buffered with the headers or, with nothing
            # buffered, makes one read around its buffer: either way the buffer is then
            # empty and the socket alone holds the rest, for splice.
            data = self._fp.read1(min(self.left, len(view)))
            n = len(data)
            _write(fd, memoryview(data), offset, url)
            if n and self.left > n:
                self._splicer = Splicer(self._sock)
        else:
            n = self.read_into(view)
            _write(fd, view[:n], offset, url)
            return n
        self.left -= n
        if self.response.length is not None:
            self.response.length -= n
        return n

    def close(self) -> None:
        if self._splicer is not None:
            self._splicer.close()
            self._splicer = None

    def read_into(self, view: memoryview) -> int:
        if self._error is not None:
            raise self._error
        want = min(len(view), self.left)
        if self._fp is None:  # chunked: let http.client take the framing off
            got = self.response.readinto(view[:want])
            self.left -= got
            return got
        got = 0
        try:
            while got < want:
                n = self._fp.readinto1(view[got:want])
                got += n
                if not n or not self._ready.poll(0):
                    break
        except (OSError, http.client.HTTPException) as exc:
            if not got:
                raise
            self._error = exc
        self.left -= got
        if self.response.length is not None:
            self.response.length -= got
        return got

    def finish(self) -> None:
        """After the last byte: let http.client end the reply, so the connection is
        used again for the next request."""
        self.response.read()


def _note_failure(
    transfer: Transfer,
    url: str,
    client: HttpClient,
    exc: BaseException,
    retries: Retries,
    progressed: int,
    stats: FetchStats,
    segment: Segment,
) -> None:
    client.discard(url)
    if progressed:
        transfer.checkpoint(wait=False)
    policy = retries.policy
    reason = f"no data for {policy.stall_timeout:.0f}s (stalled)" if _is_timeout(exc) else str(exc)
    wait = retries.failed(exc, progressed=bool(progressed))
    if wait is None:
        raise DownloadError(
            f"{url}: gave up on bytes {segment.start}-{segment.end} after {retries.failures} "
            f"failed attempts; last error: {reason}",
            url=url,
        ) from exc
    stats.add(retries=1)
    logger.info(
        "%s: %s; retry %d/%d in %.1fs", url, reason, retries.failures, policy.max_attempts - 1, wait
    )
    transfer.stop.wait(wait)


def _is_timeout(exc: BaseException) -> bool:
    cause = exc.__cause__ if isinstance(exc, DownloadError) else exc
    return isinstance(cause, TimeoutError) or isinstance(exc, TimeoutError)


def _same_file(response: http.client.HTTPResponse, state: PartState) -> bool:
    """Whether a whole-file reply is the version the state records."""
    length = response.getheader("Content-Length")
    etag = response.getheader("ETag")
    return (
        length is not None
        and int(length) == state.size
        and (not state.etag or etag == state.etag)
        and (
            not state.last_modified
            or response.getheader("Last-Modified") in (None, state.last_modified)
        )
    )


def _check_whole_reply(url: str, response: http.client.HTTPResponse, state: PartState) -> None:
    raise_for_status(url, response)
    if response.status != 200:
        raise DownloadError(f"{url}: unexpected HTTP {response.status} to a plain GET", url=url)
    if not _same_file(response, state):
        raise RemoteChangedError(
            f"{url}: the file changed on the server (Content-Length, ETag or Last-Modified)",
            url=url,
        )


def _check_ranged_reply(
    url: str, response: http.client.HTTPResponse, start: int, end: int, state: PartState
) -> None:
    if response.status == 200:
        if _same_file(response, state):
            raise _RangesIgnored(url)
        raise RemoteChangedError(
            f"{url}: the server answered a ranged request with 200 and another version", url=url
        )
    check_partial_reply(url, response, start, end, size=state.size, etag=state.etag)


def fetch_range(
    client: HttpClient,
    info: RemoteInfo,
    start: int,
    length: int,
    *,
    policy: RetryPolicy,
    stats: FetchStats | None = None,
) -> bytes:
    """Bytes ``[start, start + length)`` of the remote file ``info``, in a request of
    their own (a second read to compare, or a repair), retried like a segment.

    Guarded by ``If-Match``; from a server that ignores Range, the whole-file reply is
    read up to the wanted bytes. Raises :class:`RemoteChangedError` when the file changed."""
    url = info.url
    state = PartState(
        url=url,
        size=info.size,
        etag=info.etag,
        last_modified=info.last_modified,
        content_md5=info.content_md5,
    )
    end = start + length - 1
    headers = {"Range": f"bytes={start}-{end}"}
    if info.etag:
        headers["If-Match"] = info.etag
    retries = Retries(policy)
    while True:
        try:
            _, response = client.request("GET", url, headers)
            try:
                try:
                    _check_ranged_reply(url, response, start, end, state)
                except _RangesIgnored:
                    _skip(response, start, memoryview(bytearray(1 << 20)), url)
                data = response.read(length)
                if len(data) != length:
                    raise DownloadError(f"{url}: bytes {start}-{end} came back short", url=url)
                if response.status == 200 or response.length:
                    client.discard(url)
            except BaseException:
                client.discard(url)
                raise
            if stats is not None:
                stats.add(bytes_fetched=length)
            return data
        except (RemoteChangedError, PermanentDownloadError):
            raise
        except (DownloadError, OSError, http.client.HTTPException) as exc:
            client.discard(url)
            wait = retries.failed(exc)
            if wait is None:
                raise DownloadError(
                    f"{url}: gave up reading bytes {start}-{end} after {retries.failures} "
                    f"attempts; last error: {exc}",
                    url=url,
                ) from exc
            if stats is not None:
                stats.add(retries=1)
            pause(wait)


@functools.cache
def _fallocate() -> Callable[..., int] | None:
    """libc's ``fallocate`` (Linux), which never emulates by writing zeros; None elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        function = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


def _allocate(handle: BinaryIO, size: int, url: str) -> None:
    """Give a new ``.part`` file its size, with its blocks reserved at once where the file
    system can: writing into them costs less CPU than filling holes (~0.1 s/GB), and a
    full disk shows now instead of mid-download. Elsewhere the file stays sparse."""
    fallocate = _fallocate() if size else None
    if fallocate is not None:
        import ctypes

        if fallocate(handle.fileno(), 0, 0, size) == 0:
            return
        if ctypes.get_errno() == errno.ENOSPC:
            raise InsufficientSpaceError(
                f"the disk has no room for the {size} bytes of {url}; free space and rerun "
                "the same command"
            )
    handle.truncate(size)


def _write(fd: int, data: memoryview, offset: int, url: str) -> None:
    try:
        while data:
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InsufficientSpaceError(
                f"the disk is full while writing {url}; free space and rerun to resume"
            ) from exc
        raise DavidDataError(f"cannot write the data of {url}: {exc}") from exc
