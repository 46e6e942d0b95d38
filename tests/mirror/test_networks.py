"""Issue 8, servers and networks users have (acceptance 6): a server that ignores Range,
an HTTP proxy (forwarding and CONNECT), HTTPS with a private CA: identical bytes."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mirror_helpers import FAST, PARTS, same_bytes
from net_helpers import ProxyServer, make_test_ca

from david_data.mirror import MirrorSettings, mirror, verify_mirror
from david_data.synth.host import LocalHost

CLI = [sys.executable, "-m", "david_data"]


@pytest.fixture()
def plain_server(served: Path, get_free_port) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``python -m http.server``: no Range, no ETag, HTTP/1.0."""
    port = get_free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(served)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("python -m http.server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_server_that_ignores_range_is_mirrored_in_one_stream(
    tmp_path: Path, served: Path, plain_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    dest = tmp_path / "dest"
    with caplog.at_level(logging.WARNING, logger="david_data"):
        report = mirror(
            MirrorSettings(dest=str(dest), parts=PARTS[:3], base_url=plain_server, policy=FAST)
        )
    assert not report.failed, report.summary()
    for name in PARTS[:3]:
        assert same_bytes(served / name, dest / name)
    said = [r.message for r in caplog.records if "ignores Range requests" in r.message]
    assert len(said) == 1  # once, not once per part
    assert verify_mirror(str(dest)).ok


def test_require_ranges_makes_it_an_error(tmp_path: Path, plain_server: str) -> None:
    dest = tmp_path / "dest"
    run = subprocess.run(
        [
            *CLI,
            "mirror",
            str(dest),
            "--base-url",
            plain_server,
            "--parts",
            "0",
            "--require-ranges",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_local_env(),
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert f"FAILED {PARTS[0]}" in run.stdout and "ignores Range requests" in run.stdout
    assert not (dest / PARTS[0]).exists()


def _local_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.pop("PREFECT_API_URL", None)
    return {**env, **extra}


def test_http_proxy_is_used_and_no_proxy_honoured(
    tmp_path: Path, served: Path, host: LocalHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MirrorSettings(
        dest=str(tmp_path / "via-proxy"), parts=PARTS[:2], base_url=host.base_url, policy=FAST
    )
    with ProxyServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert not mirror(settings).failed
        seen = list(proxy.seen)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = MirrorSettings(**{**settings.__dict__, "dest": str(tmp_path / "direct")})
        assert not mirror(direct).failed
        assert proxy.seen == seen  # NO_PROXY: not a single request through the proxy
    for name in PARTS[:2]:
        assert same_bytes(served / name, tmp_path / "via-proxy" / name)
        assert same_bytes(served / name, tmp_path / "direct" / name)
    assert {m for m, _ in seen} == {"HEAD", "GET"}
    assert all(target.startswith(host.base_url) for _, target in seen)


def test_https_with_a_test_ca_directly_and_through_connect(
    tmp_path: Path, served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, context = make_test_ca(tmp_path)
    with LocalHost(served, tls=context) as host:
        assert host.base_url.startswith("https://")
        for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            monkeypatch.setenv(variable, str(ca))
            dest = tmp_path / variable
            report = mirror(
                MirrorSettings(dest=str(dest), parts=PARTS[:1], base_url=host.base_url, policy=FAST)
            )
            assert not report.failed, report.summary()
            assert same_bytes(served / PARTS[0], dest / PARTS[0])
            monkeypatch.delenv(variable)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        with ProxyServer() as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            dest = tmp_path / "tunnel"
            report = mirror(
                MirrorSettings(dest=str(dest), parts=PARTS[:2], base_url=host.base_url, policy=FAST)
            )
        assert not report.failed, report.summary()
        assert {m for m, _ in proxy.seen} == {"CONNECT"}
        assert all(target == f"127.0.0.1:{host.port}" for _, target in proxy.seen)
        for name in PARTS[:2]:
            assert same_bytes(served / name, dest / name)


def test_an_untrusted_certificate_is_one_clear_error(tmp_path: Path, served: Path) -> None:
    _, context = make_test_ca(tmp_path)
    with LocalHost(served, tls=context) as host:
        run = subprocess.run(
            [*CLI, "mirror", str(tmp_path / "dest"), "--base-url", host.base_url, "--parts", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_local_env(),
        )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.stderr
    assert "certificate is not trusted" in lines[0] and "SSL_CERT_FILE" in lines[0]
    assert host.stats.requests == ()  # no request got through (retries: test_first_contact.py)
