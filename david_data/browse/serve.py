"""``browse --serve``: the report folder over HTTP on loopback, nothing else.

The report opens from disk without a server; serving it is for a browser on another
machine through an SSH tunnel, or one that refuses ``file://`` pages. Only files inside
the report folder are served (the standard handler's path translation stays inside
``directory``), directory listings are off, and the default address is 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path
from typing import Any

from ..errors import ConfigError

DEFAULT_HOST = "127.0.0.1"


class _ReportHandler(http.server.SimpleHTTPRequestHandler):
    """Files of the report folder; no listings, no log line per request on stderr."""

    def list_directory(self, path: Any) -> None:
        self.send_error(404, "no listing")
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return


def report_server(
    folder: str | Path, host: str = DEFAULT_HOST, port: int = 0
) -> http.server.ThreadingHTTPServer:
    """An HTTP server (not yet serving: call ``serve_forever``) of the report ``folder``
    at ``host:port`` (port 0: a free one; the bound one is ``server.server_address``)."""
    root = Path(folder).resolve()
    if not (root / "index.html").is_file():
        raise ConfigError(f"{root} holds no index.html: write the report first (david-data browse)")
    handler = functools.partial(_ReportHandler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
        ) from exc
