"""`python -m david_data.synth.host DIR` serves from another process until signalled."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from host_helpers import PART_A, PART_B


def start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "david_data.synth.host", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_signalled(tmp_path: Path, served: dict[str, bytes], sig: int):
    proc, url = start([str(tmp_path), "--port", "0"])
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + PART_B, timeout=10) as r:
            assert r.read() == served[PART_B]
            assert r.headers["ETag"].startswith('"0x')
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0


def test_rate_option_caps_connections(tmp_path: Path, served: dict[str, bytes]):
    proc, url = start([str(tmp_path), "--rate", "200000", "--content-md5"])
    try:
        request = urllib.request.Request(url + PART_A, headers={"Range": "bytes=0-399999"})
        t0 = time.monotonic()
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.read() == served[PART_A][:400_000]
        assert time.monotonic() - t0 > 1.0
        with urllib.request.urlopen(urllib.request.Request(url + PART_B, method="HEAD")) as r:
            assert r.headers["Content-MD5"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "david_data.synth.host", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr
