"""Move a reply's body from a plain TCP socket into the ``.part`` file without copying it
through Python (Linux ``splice``: socket → pipe → file at an offset).

Measured by ``benchmarks/bench_mirror.py``: reading into a buffer and ``pwrite``-ing it
copies every byte twice (socket → buffer → page cache); ``splice`` hands the socket's
pages to a pipe and copies them once, into the page cache. TLS sockets, chunked replies
and systems without ``os.splice`` keep the buffered path (:class:`.fetch._Body`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket

from ..errors import DavidDataError, InsufficientSpaceError

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
PIPE_BYTES = 1 << 20
"""Pipe size asked for (Linux's unprivileged maximum by default); 64 KiB if refused."""
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


def can_splice(sock: object) -> bool:
    """Whether ``sock`` is a plain (not TLS) TCP socket on a system with ``splice``."""
    return hasattr(os, "splice") and type(sock) is socket.socket


class Splicer:
    """One pipe that carries bytes from a socket to a file; close it after use."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.read_end, self.write_end = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.write_end, _F_SETPIPE_SZ, PIPE_BYTES)
        self.capacity = fcntl.fcntl(self.write_end, _F_GETPIPE_SZ)
        self._ready = select.poll()
        self._ready.register(sock.fileno(), select.POLLIN)
        self._error: OSError | None = None

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)

    def move(self, fd: int, offset: int, count: int, url: str) -> int:
        """Move what has arrived (at least one byte, at most ``count``) into ``fd`` at
        ``offset``; 0 when the peer closed the connection.

        Waits for the first byte up to the socket's timeout (then :class:`TimeoutError`).
        Bytes that arrived before a connection error are written first; the error is
        raised by the next call. A failed file write raises
        :class:`~david_data.errors.InsufficientSpaceError` (disk full) or
        :class:`~david_data.errors.DavidDataError`.
        """
        if self._error is not None:
            raise self._error
        sock = self.sock.fileno()
        want = min(count, self.capacity)
        got = 0
        while got < want:
            try:
                n = os.splice(sock, self.write_end, want - got, flags=_FLAGS)
            except BlockingIOError:
                if got:
                    break
                timeout = self.sock.gettimeout()
                if not self._ready.poll(None if timeout is None else timeout * 1000):
                    raise TimeoutError("timed out") from None
                continue
            except OSError as exc:
                if not got:
                    raise
                self._error = exc
                break
            if not n:
                break
            got += n
        self._drain(fd, offset, got, url)
        return got

    def _drain(self, fd: int, offset: int, count: int, url: str) -> None:
        """Write the ``count`` bytes the pipe holds to ``fd`` at ``offset``."""
        try:
            while count:
                n = os.splice(self.read_end, fd, count, offset_dst=offset)
                if not n:
                    raise OSError(errno.EIO, "the file took no bytes")
                offset, count = offset + n, count - n
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise InsufficientSpaceError(
                    f"the disk is full while writing {url}; free space and rerun to resume"
                ) from exc
            raise DavidDataError(f"cannot write the data of {url}: {exc}") from exc
