"""A local SynthHuman host: serve a folder over loopback HTTP the way the Azure static website does.

``LocalHost(root)`` is a real ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0 by default) that
serves the files under ``root`` at ``host.base_url`` (``http://127.0.0.1:PORT/``), so
``host.base_url + "SynthHuman_0001.zip"`` is what ``.../iccv-2025/data/SynthHuman_0001.zip`` is
on the official host. It behaves like an Azure blob behind the static-website endpoint:

- ``HEAD`` and ``GET``; headers ``Content-Length``, ``Content-Type``, ``ETag`` (quoted, Azure
  style ``"0x…"``), ``Last-Modified``, ``Accept-Ranges: bytes`` and, with
  ``content_md5=True``, ``Content-MD5`` (base64 of the whole file's MD5) on ``HEAD`` and full
  ``GET`` replies (computed once per file version and cached).
- One ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> ``206`` with ``Content-Range``;
  a range starting past the end -> ``416``; a malformed or multi-range header is ignored
  (``200`` with the whole file, as RFC 9110 allows).
- ``If-Match`` with none of the file's ETag (or ``*``) -> ``412``; a missing file -> ``404``.
- HTTP/1.1 keep-alive; bodies go out with ``sendfile`` straight from disk, so memory stays flat
  and gigabytes per second pass on loopback. The ETag comes from ``stat`` (size, mtime, ctime,
  inode) plus a per-file generation that :meth:`LocalHost.replace` bumps, so an 8 GB file is
  never hashed for it and a replaced file always gets a new ETag.

Faults, for tests (thread-safe and deterministic in count)::

    host.faults.add(Fault.reset(after_bytes=1 << 20), times=2, path="SynthHuman_0001.zip")
    host.faults.add(Fault.status(503, retry_after=0))          # next request of any file

``host.faults`` is a :class:`~david_data.synth.faults.FaultSet`; :mod:`.faults` lists every
fault and which of them combine. ``host.replace(name, data)`` swaps a file's
content atomically between requests (replies in flight keep the old bytes) and returns its
new ETag.

Stats: ``host.stats`` is a snapshot :class:`HostStats` with ``bytes_served`` (body bytes actually
sent, per file) and ``requests`` (one :class:`RequestRecord` per reply: method, path, Range,
If-Match, status, body bytes sent, faults applied). ``host.reset_stats()`` clears both.

HTTPS: ``LocalHost(root, tls=context)`` serves over TLS with a server-side
``ssl.SSLContext`` (its certificate must name ``127.0.0.1``); ``base_url`` is then
``https://127.0.0.1:PORT/``.

From another process: ``python -m david_data.synth.host DIR [--port N] [--rate B/S]
[--content-md5] [--fault SPEC ...]`` (also ``david-data serve``) prints the base URL on
stdout and serves until interrupted (SIGINT/SIGTERM). A fault spec is
``KIND[:KEY=VALUE,...]`` with the keyword arguments of :mod:`.faults` plus ``times`` (a count, or
``all``) and ``path``, e.g. ``reset:after_bytes=1000000,times=2`` or
``status:code=503,retry_after=1``; see :func:`parse_fault`.
"""

from __future__ import annotations

import argparse
import array
import base64
import contextlib
import email.utils
import hashlib
import logging
import mimetypes
import os
import re
import signal
import socket
import ssl
import stat
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, BinaryIO, Literal
from urllib.parse import quote, unquote, urlsplit

from david_data.errors import ConfigError
from david_data.synth.faults import (
    RANGE_FAULTS,
    ArmedFault,
    Fault,
    FaultKind,
    FaultSet,
    add_fault_option,
    parse_fault,
    served_name,
)

__all__ = [
    "ArmedFault",
    "Fault",
    "FaultKind",
    "FaultSet",
    "HostStats",
    "LocalHost",
    "RequestRecord",
    "main",
    "parse_fault",
    "serve",
]

log = logging.getLogger(__name__)


_MD5_CHUNK = 8 << 20
_RESET_DRAIN_S = 5.0
_IDLE_TIMEOUT_S = 300.0


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    """One reply the host sent."""

    method: str
    path: str
    range: str | None
    if_match: str | None
    status: int
    bytes_sent: int
    faults: tuple[FaultKind, ...] = ()


@dataclass(frozen=True, kw_only=True)
class HostStats:
    """A snapshot of what the host served since it started or since ``reset_stats()``."""

    bytes_served: dict[str, int]
    requests: tuple[RequestRecord, ...]

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_served.values())

    def requests_for(self, path: str, method: str | None = None) -> list[RequestRecord]:
        """The records for one file (and one method, when given), in order."""
        name = served_name(path)
        return [r for r in self.requests if r.path == name and method in (None, r.method)]


class LocalHost:
    """Serve ``root`` on loopback like the Azure static website; see the module docstring."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        content_md5: bool = False,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ):
        self.root = Path(root).resolve()
        self.tls = tls
        if not self.root.is_dir():
            raise ConfigError(
                f"cannot serve {self.root}: not a directory; give the folder holding the parts"
            )
        self.content_md5 = content_md5
        self.port = port
        self.faults = FaultSet()
        self._lock = threading.Lock()  # stats, generations, connections
        self._bytes: dict[str, int] = {}
        self._requests: list[_Entry] = []
        self._generation: dict[str, int] = {}
        self._md5: dict[str, tuple[str, str]] = {}  # name -> (etag, md5)
        self._md5_locks: dict[str, threading.Lock] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalHost:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler, self)
        self.port = self._server.server_address[1]
        if self.tls is not None:  # handshakes happen in the handler threads
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"LocalHost:{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.debug("serving %s at %s", self.root, self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and wait for their threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> LocalHost:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``; valid once started."""
        if self._server is None:
            raise RuntimeError("LocalHost is not running: call start() or use it as a context")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/"

    def url(self, name: str) -> str:
        """The URL of file ``name`` (relative to root)."""
        return self.base_url + quote(served_name(name))

    # files ---------------------------------------------------------------------------------

    def replace(self, name: str, data: bytes) -> str:
        """Atomically give file ``name`` new content; returns its new ETag."""
        rel = served_name(name)
        target = self._resolve(rel)
        if target is None:
            raise ConfigError(f"cannot replace {name!r}: outside the served folder {self.root}")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            with self._lock:
                os.replace(tmp, target)
                self._generation[rel] = self._generation.get(rel, 0) + 1
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.etag(rel)

    def etag(self, name: str) -> str:
        """The ETag the host sends for file ``name`` right now (quoted)."""
        rel = served_name(name)
        path = self._resolve(rel)
        if path is None:
            raise FileNotFoundError(name)
        with self._lock:
            st = path.stat()
            return _etag(st, self._generation.get(rel, 0))

    # stats ---------------------------------------------------------------------------------

    @property
    def stats(self) -> HostStats:
        with self._lock:
            return HostStats(
                bytes_served={k: v for k, v in self._bytes.items() if v},
                requests=tuple(e.record() for e in self._requests),
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._bytes.clear()
            self._requests.clear()

    # internals used by the handler ---------------------------------------------------------

    def _resolve(self, rel: str) -> Path | None:
        return self.root / rel if rel else None

    def _open(self, rel: str) -> tuple[BinaryIO, os.stat_result, str] | None:
        """Open a served file; returns (file, stat, etag) consistent with each other."""
        path = self._resolve(rel)
        if path is None:
            return None
        with self._lock:
            try:
                f = open(path, "rb")  # noqa: SIM115 - closed by the handler
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
                return None
            generation = self._generation.get(rel, 0)
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            return None
        return f, st, _etag(st, generation)

    def _content_md5(self, rel: str, f: BinaryIO, etag: str) -> str:
        with self._lock:
            cached = self._md5.get(rel)
            if cached and cached[0] == etag:
                return cached[1]
            file_lock = self._md5_locks.setdefault(rel, threading.Lock())
        with file_lock:
            with self._lock:
                cached = self._md5.get(rel)
                if cached and cached[0] == etag:
                    return cached[1]
            digest = hashlib.md5(usedforsecurity=False)
            buf = bytearray(_MD5_CHUNK)
            view = memoryview(buf)
            offset = 0
            while n := os.preadv(f.fileno(), [buf], offset):
                digest.update(view[:n])
                offset += n
            value = base64.b64encode(digest.digest()).decode("ascii")
            with self._lock:
                self._md5[rel] = (etag, value)
            return value

    def _log(self, entry: _Entry) -> None:
        with self._lock:
            self._requests.append(entry)

    def _count(self, entry: _Entry, n: int) -> None:
        with self._lock:
            entry.bytes_sent += n
            self._bytes[entry.path] = self._bytes.get(entry.path, 0) + n

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], host: LocalHost) -> None:
        self.host = host
        super().__init__(address, handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # client went away: not the server's problem
            log.debug("connection %s ended: %s", client_address, exc)
        else:
            super().handle_error(request, client_address)


@dataclass(kw_only=True, slots=True)
class _Entry:
    """The mutable log entry behind a RequestRecord (bytes grow while the body is sent)."""

    method: str
    path: str
    range: str | None = None
    if_match: str | None = None
    status: int = 0
    bytes_sent: int = 0
    faults: list[FaultKind] = field(default_factory=list)

    def record(self) -> RequestRecord:
        return RequestRecord(
            method=self.method,
            path=self.path,
            range=self.range,
            if_match=self.if_match,
            status=self.status,
            bytes_sent=self.bytes_sent,
            faults=tuple(self.faults),
        )


@dataclass(frozen=True, kw_only=True)
class _Body:
    """Where a reply's body comes from and which body faults shape it."""

    offset: int
    length: int
    reset: Fault | None = None
    stall: Fault | None = None
    rate: Fault | None = None
    corrupt: Fault | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "david-data-localhost/1.0"
    timeout = _IDLE_TIMEOUT_S
    disable_nagle_algorithm = True
    """TCP_NODELAY: the headers and a small body go out as two writes; with Nagle the body
    would wait for the client's delayed ACK of the headers (~40 ms a reply on loopback)."""
    server: _Server
    _entry: _Entry | None = None

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(_IDLE_TIMEOUT_S)
            self.request.do_handshake()
        super().setup()
        self.server.host._track(self.connection, True)
        if self.server.host._stopping.is_set():  # accepted while stop() ran: end it now
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self.server.host._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        log.debug("%s " + format, self.address_string(), *args)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Log the reply before its first byte leaves, so a client that has seen a reply
        # always finds it in host.stats.
        entry = self._entry or _Entry(  # replies the base class sends (400, 501)
            method=str(getattr(self, "command", None) or "?"),
            path=served_name(unquote(urlsplit(getattr(self, "path", "") or "").path)),
        )
        entry.status = code
        self.server.host._log(entry)
        super().send_response(code, message)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # one request ---------------------------------------------------------------------------

    def _serve(self, *, head: bool) -> None:
        rel = served_name(unquote(urlsplit(self.path).path))
        self._entry = _Entry(
            method=self.command,
            path=rel,
            range=self.headers.get("Range"),
            if_match=self.headers.get("If-Match"),
        )
        try:
            self._respond(self.server.host, self._entry, head)
        finally:
            self._entry = None

    def _respond(self, host: LocalHost, entry: _Entry, head: bool) -> None:
        rel = entry.path
        fault = host.faults.take(frozenset({"status"}), rel)
        if fault is not None:
            entry.faults.append("status")
            extra = [] if fault.retry_after is None else [("Retry-After", str(fault.retry_after))]
            self._error(fault.code, "ServerBusy", head, extra)
            return
        opened = host._open(rel)
        if opened is None:
            self._error(404, "WebContentNotFound", head)
            return
        f, st, etag = opened
        with f:
            if entry.if_match is not None and not _etag_matches(entry.if_match, etag):
                self._error(412, "ConditionNotMet", head)
                return
            size = st.st_size
            headers = [
                ("Content-Type", mimetypes.guess_type(rel)[0] or "application/octet-stream"),
                ("ETag", etag),
                ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
                ("Accept-Ranges", "bytes"),
            ]
            wanted = None if head else _parse_range(entry.range, size)
            if wanted == "unsatisfiable":
                self._error(416, "InvalidRange", head, [("Content-Range", f"bytes */{size}")])
                return
            status, offset, length = 200, 0, size
            if wanted is not None:
                status, offset, content_range = self._ranged(host, entry, size, wanted)
                if content_range is not None:
                    headers.append(("Content-Range", content_range))
                if status != 200:
                    length = wanted[1] - wanted[0] + 1
            if status == 200 and host.content_md5:
                headers.append(("Content-MD5", host._content_md5(rel, f, etag)))
            body = None if head or not length else self._body_faults(host, entry, offset, length)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if body is not None:
                self._send_body(host, entry, f, body)

    def _ranged(
        self, host: LocalHost, entry: _Entry, size: int, wanted: tuple[int, int]
    ) -> tuple[int, int, str | None]:
        """Status, file offset and Content-Range for a satisfiable ranged GET (range faults here)."""
        start, end = wanted
        length = end - start + 1

        def applies(fault: Fault) -> bool:
            return fault.kind != "shifted_range" or length < size

        fault = host.faults.take(RANGE_FAULTS, entry.path, applies)
        if fault is None:
            return 206, start, f"bytes {start}-{end}/{size}"
        entry.faults.append(fault.kind)
        if fault.kind == "ignore_range":
            return 200, 0, None
        if fault.kind == "malformed_range":
            return 206, start, fault.content_range
        offset = min(start + fault.shift, size - length)
        if offset == start:  # the range ends the file: shift it backwards instead
            offset = max(0, start - fault.shift)
        if fault.claim == "true":
            return 206, offset, f"bytes {offset}-{offset + length - 1}/{size}"
        return 206, offset, f"bytes {start}-{end}/{size}"

    def _body_faults(self, host: LocalHost, entry: _Entry, offset: int, length: int) -> _Body:
        def longer_than_after(fault: Fault) -> bool:
            return length > fault.after_bytes

        def carries(fault: Fault) -> bool:
            return offset <= fault.offset < offset + length

        body = _Body(
            offset=offset,
            length=length,
            reset=host.faults.take(frozenset({"reset"}), entry.path, longer_than_after),
            stall=host.faults.take(frozenset({"stall"}), entry.path, longer_than_after),
            rate=host.faults.take(frozenset({"rate_cap"}), entry.path),
            corrupt=host.faults.take(frozenset({"corrupt"}), entry.path, carries),
        )
        faults = (body.reset, body.stall, body.rate, body.corrupt)
        entry.faults.extend(f.kind for f in faults if f is not None)
        return body

    def _error(
        self, code: int, azure_code: str, head: bool, extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{azure_code}</Code>'
            f"<Message>{self.responses.get(code, ('',))[0]}</Message></Error>"
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    # the body --------------------------------------------------------------------------------

    def _send_body(self, host: LocalHost, entry: _Entry, f: BinaryIO, body: _Body) -> None:
        """Stream the body from disk with sendfile, applying reset/stall/rate-cap faults."""
        stall_at = body.stall.after_bytes if body.stall else None
        reset_at = body.reset.after_bytes if body.reset else None
        flip_at = body.corrupt.offset - body.offset if body.corrupt else None
        bps = body.rate.bytes_per_second if body.rate else 0
        chunk = min(1 << 20, max(4096, bps // 20)) if bps else body.length
        sent = 0
        clock = time.monotonic()
        while sent < body.length:
            if body.stall is not None and sent == stall_at:
                if host._stopping.wait(body.stall.seconds):
                    raise ConnectionAbortedError("host stopping")
                stall_at = None
                clock = time.monotonic() - (sent / bps if bps else 0.0)
            if sent == reset_at:
                self._reset_connection(host)
                return
            if sent == flip_at and body.corrupt is not None:
                f.seek(body.offset + sent)
                flipped = bytes([f.read(1)[0] ^ body.corrupt.xor])
                host._count(entry, 1)
                self.connection.sendall(flipped)
                sent += 1
                flip_at = None
                continue
            n = min(body.length - sent, chunk)
            for boundary in (stall_at, reset_at, flip_at):
                if boundary is not None and boundary > sent:
                    n = min(n, boundary - sent)
            if bps:
                delay = clock + sent / bps - time.monotonic()
                if delay > 0 and host._stopping.wait(delay):
                    raise ConnectionAbortedError("host stopping")
            done = self._sendfile(host, entry, f, body.offset + sent, n)
            if done < n:
                self.close_connection = True  # the file shrank under us: the reply is short
                return
            sent += done

    def _sendfile(
        self, host: LocalHost, entry: _Entry, f: BinaryIO, offset: int, count: int
    ) -> int:
        # Count first, correct after: the client never sees bytes the stats do not show yet.
        host._count(entry, count)
        f.seek(offset)
        try:
            done: int = self.connection.sendfile(f, offset, count)  # typeshed: Any
        except OSError:
            host._count(entry, max(0, f.tell() - offset) - count)
            raise
        if done < count:
            host._count(entry, done - count)
        return done

    def _reset_connection(self, host: LocalHost) -> None:
        """Abort with a TCP RST once the client has every byte sent so far."""
        sock = self.connection
        deadline = time.monotonic() + _RESET_DRAIN_S
        queued = array.array("i", [0])
        try:
            import fcntl
            import termios

            while time.monotonic() < deadline and not host._stopping.is_set():
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)
                if queued[0] == 0:
                    break
                time.sleep(0.001)
        except (ImportError, OSError):
            pass
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # the real close (and RST) follows when finish() drops the file objects
        self.close_connection = True


# helpers -------------------------------------------------------------------------------------

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def _parse_range(
    header: str | None, size: int
) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Parse one byte range; None means "serve the whole file" (absent or ignorable header)."""
    if header is None:
        return None
    match = _RANGE_RE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last or int(last) == 0:
            return None if not last else "unsatisfiable"
        return (max(0, size - int(last)), size - 1) if size else "unsatisfiable"
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _etag(st: os.stat_result, generation: int) -> str:
    token = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}:{generation}"
    digest = hashlib.blake2b(token.encode(), digest_size=7).hexdigest().upper()
    return f'"0x8{digest}"'


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags


# running it from a shell ---------------------------------------------------------------------


def serve(
    root: str | os.PathLike[str],
    *,
    port: int = 0,
    content_md5: bool = False,
    rate: int | None = None,
    faults: Sequence[str] = (),
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``root`` until SIGINT/SIGTERM with the ``faults`` specs armed (see
    :func:`parse_fault`); ``announce`` receives the base URL once listening."""
    armed = [parse_fault(spec) for spec in faults]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalHost(root, content_md5=content_md5, port=port) as host:
            if rate:
                host.faults.add(Fault.rate_cap(rate), times=None)
            for fault, times, path in armed:
                host.faults.add(fault, times=times, path=path)
            announce(host.base_url)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m david_data.synth.host",
        description="Serve a folder of SynthHuman parts over loopback HTTP like the Azure host "
        "(HEAD, Range, ETag). Prints the base URL, then serves until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("root", help="folder whose files are served (e.g. SynthHuman_0000.zip)")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--rate",
        type=int,
        default=None,
        metavar="BYTES_PER_S",
        help="cap every connection at this many bytes per second, like a remote server",
    )
    parser.add_argument(
        "--content-md5",
        action="store_true",
        help="send Content-MD5 (computed once per file) like blobs uploaded with an MD5",
    )
    add_fault_option(parser)
    args = parser.parse_args(argv)
    try:
        serve(
            args.root,
            port=args.port,
            content_md5=args.content_md5,
            rate=args.rate,
            faults=args.fault,
            announce=lambda url: print(url, flush=True),
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
