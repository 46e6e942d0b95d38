"""Helpers for the loader tests: the test store's ids, and a counting (optionally slow)
HTTP proxy in front of Azurite, so a test sees every request any process makes."""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

SHARD = 10
IDS = range(0, 36)
BROKEN = 13  # its depth EXR is garbage: metadata status 'error'
OK_IDS = sorted(set(IDS) - {BROKEN})

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # URL path without the query, unquoted: /devstoreaccount1/<container>/<blob>
    range: str | None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client killed mid-request (the crash test) is expected


class CountingProxy:
    """Forwards HTTP requests to ``127.0.0.1:target_port`` and records each one.

    ``slow(match, seconds)`` delays the responses to GETs whose path contains ``match``.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._slow: tuple[str, float] | None = None
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = unquote(urlsplit(self.path).path)
                with proxy._lock:
                    proxy.requests.append(
                        Request(
                            self.command,
                            path,
                            self.headers.get("Range") or self.headers.get("x-ms-range"),
                        )
                    )
                    slow, release = proxy._slow, proxy._release
                if slow is not None and self.command == "GET" and slow[0] in path:
                    release.wait(slow[1])
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status, reply.reason)
                for key, value in reply.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", reply.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def slow(self, match: str | None, seconds: float = 0.0) -> None:
        """Delay GETs of paths containing ``match``; None releases the delayed ones now."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()
            self._slow = None if match is None else (match, seconds)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def gets(self, under: str) -> list[Request]:
        """GET requests for paths containing ``under``."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and under in r.path]

    def close(self) -> None:
        self.slow(None)
        self._server.shutdown()
        self._server.server_close()


def with_pid(sample: dict) -> dict:
    """A loader transform that records the process that read the sample."""
    import os

    import numpy as np

    return {**sample, "pid": np.int64(os.getpid())}
