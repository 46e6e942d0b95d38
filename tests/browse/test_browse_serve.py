"""``browse --serve``: the report folder on 127.0.0.1 by default, and nothing outside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "import sys; from david_data.cli import main; sys.exit(main())"]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serve_binds_loopback_and_serves_only_the_report(
    plain_store: tuple[Path, list[int]], tmp_path: Path
) -> None:
    store, ids = plain_store
    (tmp_path / "secret.txt").write_text("not for the web")
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen(
        [*CLI, "browse", str(store), "-o", str(out), "--workers", "1", "--no-progress", "--serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("serving "):
            line = proc.stdout.readline()
            assert line, proc.communicate()
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        status, body = get(url + "index.html")
        assert status == 200 and body == (out / "index.html").read_bytes()
        assert get(url + "data.js")[0] == 200
        assert get(url + "img/")[0] == 404  # no listings
        for escape in ("../secret.txt", "%2e%2e/secret.txt", "img/../../secret.txt"):
            assert get(url + escape)[1] != b"not for the web"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_needs_a_written_report(tmp_path: Path) -> None:
    from david_data.browse.serve import report_server
    from david_data.errors import ConfigError

    with pytest.raises(ConfigError, match="index.html"):
        report_server(tmp_path)
