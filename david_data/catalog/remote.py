"""Byte ranges of a part, wherever it is: an HTTP host, a local mirror or an object store.

Over HTTP every read is a closed ``Range: bytes=a-b`` request with ``If-Match`` on the
part's ETag, sent through the shared keep-alive client (:mod:`david_data.net.http`)
and retried with its policy; a reply is used only if it is a 206 whose Content-Range
(start, end, total) and ETag match. A failed transfer resumes at the first byte not yet
delivered, so a consumer sees every byte once, in order. A 200 to a ranged request means
the server ignores ranges: :class:`~david_data.errors.RangeNotSupportedError`, naming the
server. A 412, a new ETag or a new size: :class:`~david_data.errors.RemoteChangedError`.

Elsewhere (a mirror folder, ``az://``) reads go through fsspec, and the part's identity
is its ETag when the store gives one, else its modification time.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..engine import stop_requested
from ..errors import (
    DownloadError,
    JobInterrupted,
    PermanentDownloadError,
    RangeNotSupportedError,
    RemoteChangedError,
)
from ..fsutil import resolve
from ..net.http import HttpClient, check_partial_reply, head_with_retries, is_http
from ..net.retry import Retries, RetryPolicy

logger = logging.getLogger(__name__)

_CHUNK = 256 << 10
"""Bytes read from a socket at a time."""

Sink = Callable[[memoryview], None]
"""Receives the bytes of a range in order; the view is valid only during the call."""


class Stopped(JobInterrupted):
    """A stop was requested (Ctrl-C) while a range was being read."""


class _SinkFailed(Exception):
    """The consumer raised: its error is passed on as it is, never retried."""


@dataclass(frozen=True, kw_only=True)
class PartVersion:
    """Which version of a part the bytes must come from."""

    size: int
    version: str | None
    """The ETag over HTTP and on object stores; the modification time on a local disk."""


def server_of(url: str) -> str:
    """``host:port`` of an HTTP URL (what a message names)."""
    return urllib.parse.urlsplit(url).netloc


_clients: dict[tuple[float, float], HttpClient] = {}
_clients_lock = threading.Lock()


def http_client(policy: RetryPolicy) -> HttpClient:
    """One shared client per timeout setting (it keeps one connection per thread)."""
    key = (policy.connect_timeout, policy.stall_timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = HttpClient(
                connect_timeout=policy.connect_timeout, stall_timeout=policy.stall_timeout
            )
        return client


def stat_part(
    url: str, *, policy: RetryPolicy, storage_options: dict[str, Any] | None = None
) -> PartVersion:
    """Size and version of a part: a HEAD over HTTP, ``info`` elsewhere."""
    if is_http(url):
        info = head_with_retries(http_client(policy), url, policy)
        return PartVersion(size=info.size, version=info.etag)
    fs, path = resolve(url, storage_options)
    fs.invalidate_cache(path)
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise PermanentDownloadError(
            f"{url} does not exist: check the mirror folder and --parts", url=url
        ) from exc
    stamp = info.get("etag") or info.get("mtime") or info.get("last_modified")
    return PartVersion(size=int(info["size"]), version=None if stamp is None else str(stamp))


def read_range(
    url: str,
    start: int,
    end: int,
    sink: Sink,
    *,
    expect: PartVersion,
    policy: RetryPolicy,
    storage_options: dict[str, Any] | None = None,
) -> int:
    """Feed bytes ``start`` ... ``end`` (inclusive) of the part at ``url`` to ``sink``.

    Returns the number of bytes received from the server (retries included). Raises
    :class:`Stopped` when a stop is requested between chunks.
    """
    if start > end or end >= expect.size:
        raise ValueError(f"bad range {start}-{end} of a {expect.size}-byte file")
    if is_http(url):
        return _read_http(url, start, end, sink, expect, policy)
    return _read_fs(url, start, end, sink, expect, storage_options)


def _read_fs(
    url: str,
    start: int,
    end: int,
    sink: Sink,
    expect: PartVersion,
    storage_options: dict[str, Any] | None,
) -> int:
    fs, path = resolve(url, storage_options)
    data = fs.cat_file(path, start=start, end=end + 1)
    if len(data) != end - start + 1:
        raise RemoteChangedError(
            f"{url}: asked for bytes {start}-{end} but got {len(data)} bytes; the file "
            "changed or shrank",
            url=url,
        )
    view = memoryview(data)
    for at in range(0, len(view), _CHUNK):
        if stop_requested():
            raise Stopped(url)
        sink(view[at : at + _CHUNK])
    return len(data)


def _read_http(
    url: str, start: int, end: int, sink: Sink, expect: PartVersion, policy: RetryPolicy
) -> int:
    client = http_client(policy)
    pos = start
    received = 0
    retries = Retries(policy)
    while pos <= end:
        headers = {"Range": f"bytes={pos}-{end}"}
        if expect.version:
            headers["If-Match"] = expect.version
        progressed = 0
        try:
            _, response = client.request("GET", url, headers)
            try:
                _check_reply(url, response, pos, end, expect)
            except BaseException:
                client.discard(url)
                raise
            while pos <= end:
                if stop_requested():
                    client.discard(url)
                    raise Stopped(url)
                # read1: what arrived is handed on at once, so a reset or a stall loses
                # nothing already received (readinto would drop a partly filled buffer).
                chunk = response.read1(min(_CHUNK, end - pos + 1))
                n = len(chunk)
                if not n:
                    raise DownloadError(
                        f"{url}: connection closed with bytes {pos}-{end} still to come", url=url
                    )
                try:
                    sink(memoryview(chunk))
                except Exception as exc:
                    raise _SinkFailed() from exc
                pos += n
                progressed += n
                received += n
            response.read()  # read1 never marks a finished body done: keep-alive needs it
        except _SinkFailed as failed:
            client.discard(url)
            raise failed.__cause__ from None  # type: ignore[misc]  # set: raised "from exc"
        except (RemoteChangedError, PermanentDownloadError, Stopped):
            raise
        except JobInterrupted as exc:
            raise Stopped(url) from exc
        except (DownloadError, OSError, http.client.HTTPException) as exc:
            client.discard(url)
            if stop_requested():  # a stop shut the connection (see net.http)
                raise Stopped(url) from exc
            reason = _reason(exc, policy)
            wait = retries.failed(exc, progressed=bool(progressed))
            if wait is None:
                raise DownloadError(
                    f"{url}: gave up on bytes {pos}-{end} after {retries.failures} failed "
                    f"attempts; last error: {reason}",
                    url=url,
                ) from exc
            where = "" if reason.startswith(url) else f"{url}: "
            logger.info("%s%s; retrying bytes %d-%d in %.1fs", where, reason, pos, end, wait)
            time.sleep(wait)
    return received


def _reason(exc: BaseException, policy: RetryPolicy) -> str:
    cause = exc.__cause__ if isinstance(exc, DownloadError) else exc
    if isinstance(cause, TimeoutError):
        return f"no data for {policy.stall_timeout:g}s (stalled)"
    return str(exc)


def _check_reply(
    url: str, response: http.client.HTTPResponse, start: int, end: int, expect: PartVersion
) -> None:
    if response.status == 200:
        raise RangeNotSupportedError(
            f"the server {server_of(url)} ignores byte ranges: asked for bytes {start}-{end} of "
            f"{url}, it sent the whole file (HTTP 200); single samples cannot be fetched from "
            "it: download whole parts with 'david-data mirror' instead",
            url=url,
        )
    check_partial_reply(url, response, start, end, size=expect.size, etag=expect.version)
