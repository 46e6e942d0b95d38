"""A small keep-alive HTTP client for large ranged downloads (stdlib ``http.client``).

Chosen by measurement: on loopback, ``http.client`` reading into a reused 1 MiB buffer
costs ~0.5 CPU-s per GB written to disk, well below requests, aiohttp, httpx, curl or
wget. One connection per (thread, host) is kept alive and reused; any error closes it.

The socket timeout is the stall detector: a read that sees no byte for
``stall_timeout`` seconds raises :class:`~david_data.errors.DownloadError`.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass

from ..errors import DownloadError, PermanentDownloadError, RemoteChangedError

_MAX_REDIRECTS = 5
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True, kw_only=True)
class RemoteInfo:
    """What a HEAD request says about a remote file."""

    url: str
    size: int
    etag: str | None
    last_modified: str | None
    content_md5: str | None
    """Base64 MD5 of the whole file, when the server sends it (Azure may)."""


@dataclass(frozen=True, kw_only=True)
class ContentRange:
    start: int
    end: int
    total: int | None


def parse_content_range(value: str | None) -> ContentRange | None:
    """Parse ``bytes a-b/total``; None when absent or malformed."""
    if not value:
        return None
    match = _CONTENT_RANGE_RE.match(value.strip())
    if match is None:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return ContentRange(start=int(match.group(1)), end=int(match.group(2)), total=total)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form; dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


class HttpStatusError(DownloadError):
    """A retryable HTTP status (408, 429, 5xx); carries ``status`` and ``retry_after``."""

    status: int
    retry_after: float | None


def raise_for_status(url: str, response: http.client.HTTPResponse) -> None:
    """Turn an error status into the matching typed error (response is drained first)."""
    status = response.status
    if status < 400:
        return
    response.read()  # drain small error bodies so the connection stays usable
    reason = f"HTTP {status} {response.reason}"
    if status in (408, 429) or status >= 500:
        raise HttpStatusError(
            f"{url}: {reason}; will retry",
            url=url,
            status=status,
            retry_after=parse_retry_after(response.getheader("Retry-After")),
        )
    if status == 412:
        response_etag = response.getheader("ETag")
        raise RemoteChangedError(
            f"{url}: HTTP 412, the file changed on the server (ETag now {response_etag})", url=url
        )
    hint = {
        403: "access denied: check the URL and any credentials",
        404: "not found: check --base-url and the part selection",
        410: "gone from the server",
    }.get(status, "the server refused the request")
    raise PermanentDownloadError(f"{url}: {reason} ({hint})", url=url, status=status)


class HttpClient:
    """Thread-safe client; each thread keeps one keep-alive connection per host."""

    def __init__(self, *, connect_timeout: float = 15.0, stall_timeout: float = 30.0) -> None:
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self._local = threading.local()

    def _pool(self) -> dict[tuple[str, str, int], http.client.HTTPConnection]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connection(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise PermanentDownloadError(
                f"unsupported URL scheme {scheme!r}: use http:// or https://"
            )
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname or "", port)
        pool = self._pool()
        conn = pool.get(key)
        if conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = cls(key[1], port, timeout=self.connect_timeout)
            pool[key] = conn
        return conn

    def _drop(self, parts: urllib.parse.SplitResult) -> None:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        conn = self._pool().pop((parts.scheme.lower(), parts.hostname or "", port), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in self._pool().values():
            conn.close()
        self._pool().clear()

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[str, http.client.HTTPResponse]:
        """Send a request, following redirects; returns (final URL, response).

        The caller must read the body to the end (or call :meth:`discard`) before the
        thread's next request. Connection errors become :class:`DownloadError`.
        """
        for _ in range(_MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            for fresh in (False, True):
                conn = self._connection(parts)
                try:
                    conn.request(method, target, headers=headers or {})
                    if conn.sock is not None:
                        conn.sock.settimeout(self.stall_timeout)
                    response = conn.getresponse()
                    break
                except (
                    http.client.RemoteDisconnected,
                    ConnectionResetError,
                    BrokenPipeError,
                ) as exc:
                    self._drop(parts)
                    if fresh:
                        raise DownloadError(f"{url}: connection failed: {exc}", url=url) from exc
                    # A kept-alive connection the server closed meanwhile: retry once fresh.
                except (OSError, http.client.HTTPException) as exc:
                    self._drop(parts)
                    raise DownloadError(
                        f"{url}: request failed: {_describe(exc)}", url=url
                    ) from exc
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                location = response.getheader("Location") or ""
                response.read()
                url = urllib.parse.urljoin(url, location)
                continue
            return url, response
        raise PermanentDownloadError(f"{url}: more than {_MAX_REDIRECTS} redirects", url=url)

    def discard(self, url: str) -> None:
        """Close the connection used for ``url`` (after an abandoned body)."""
        self._drop(urllib.parse.urlsplit(url))

    def head(self, url: str) -> RemoteInfo:
        """HEAD a file: size, ETag, Last-Modified, Content-MD5."""
        final, response = self.request("HEAD", url)
        response.read()
        raise_for_status(url, response)
        length = response.getheader("Content-Length")
        if length is None:
            raise PermanentDownloadError(
                f"{url}: the server sent no Content-Length, so the download cannot be "
                "split or resumed",
                url=url,
            )
        return RemoteInfo(
            url=final,
            size=int(length),
            etag=response.getheader("ETag"),
            last_modified=response.getheader("Last-Modified"),
            content_md5=response.getheader("Content-MD5"),
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
