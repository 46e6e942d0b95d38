"""Issue 15 item 9: a host that cannot be reached on first contact (connection refused,
a name that does not resolve, a TLS certificate the client does not trust) gives one
``error:`` line and exit 2 for every command that reads from a host, after one
connection attempt and no retry; faults after a connection worked are still retried."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mirror_helpers import PARTS
from net_helpers import make_test_ca

from david_data.errors import UnreachableError
from david_data.net.http import HttpClient, head_with_retries
from david_data.net.retry import RetryPolicy
from david_data.synth.host import LocalHost

ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / ".venv" / "bin" / "david-data")


class CountingTlsServer:
    """Accepts TCP connections on loopback, counts them, and offers a certificate that
    the client does not trust."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self._context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, source_parts: Path) -> Path:
    """A store converted from the parts (what verify-store checks against the host)."""
    out = tmp_path_factory.mktemp("first-contact") / "store"
    run = subprocess.run(
        [CLI, "convert", str(source_parts), str(out), "--parts", "0", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path_factory.getbasetemp()),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return out


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.pop("PREFECT_API_URL", None)
    env.pop("SSL_CERT_FILE", None)
    env.pop("REQUESTS_CA_BUNDLE", None)
    return {**env, "DAVID_DATA_CACHE_DIR": str(tmp / "cache"), "XDG_CACHE_HOME": str(tmp / "xdg")}


COMMANDS: dict[str, Callable[[str, Path, Path], list[str]]] = {
    # catalog and convert of a base URL: all 61 parts of the host, 8 at a time
    "catalog": lambda url, tmp, store: ["catalog", "--base-url", url],
    "fetch": lambda url, tmp, store: [
        "fetch",
        str(tmp / "fetched"),
        "--ids",
        "0-1",
        "--base-url",
        url,
        "--no-progress",
    ],
    "convert": lambda url, tmp, store: ["convert", url, str(tmp / "store"), "--no-progress"],
    "verify-store": lambda url, tmp, store: [
        "verify-store",
        str(store),
        "--against",
        url,
        "--sample",
        "2",
    ],
    "models fetch": lambda url, tmp, store: [
        "models",
        "fetch",
        "depth-base",
        "--base-url",
        url,
        "--dir",
        str(tmp / "models"),
    ],
}


def _run(argv: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=300, env=_env(tmp))


def _assert_one_error(run: subprocess.CompletedProcess[str], *, says: str) -> None:
    everything = run.stdout + run.stderr
    assert run.returncode == 2, everything[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, everything[-3000:]
    assert says in errors[0], errors[0]
    assert "retry" not in everything and "Traceback" not in everything, everything[-3000:]


@pytest.fixture()
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_refused_connection_is_one_error_without_retries(
    command: str, refused_url: str, tmp_path: Path, store: Path
) -> None:
    run = _run(COMMANDS[command](refused_url, tmp_path, store), tmp_path)
    _assert_one_error(run, says="the connection was refused")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_name_that_does_not_resolve_is_one_error_without_retries(
    command: str, tmp_path: Path, store: Path
) -> None:
    run = _run(COMMANDS[command]("http://no-such-host.invalid/", tmp_path, store), tmp_path)
    _assert_one_error(run, says="does not resolve")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_untrusted_certificate_is_one_error_after_one_connection(
    command: str, tmp_path: Path, store: Path
) -> None:
    _, context = make_test_ca(tmp_path)
    server = CountingTlsServer(context)
    try:
        url = f"https://127.0.0.1:{server.port}/"
        run = _run(COMMANDS[command](url, tmp_path, store), tmp_path)
    finally:
        server.close()
    _assert_one_error(run, says="certificate is not trusted")
    assert server.connections == 1


def test_a_host_reached_once_is_retried_after_a_refusal(served: Path) -> None:
    """A refusal after a connection worked is a fault the retry policy handles."""
    policy = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    with LocalHost(served) as host:
        url = host.base_url + PARTS[0]
        client = HttpClient()
        assert head_with_retries(client, url, policy).size > 0
        client.close()
        port = host.port
    # The host is gone: connecting is refused, but it answered before, so the policy's
    # attempts are all made before giving up.
    attempts: list[float] = []
    client = HttpClient()
    original = client._connect

    def counted(*args: object) -> None:
        attempts.append(time.monotonic())
        original(*args)  # type: ignore[arg-type]

    client._connect = counted  # type: ignore[method-assign]
    with pytest.raises(Exception, match="HEAD failed 3 times"):
        head_with_retries(client, f"http://127.0.0.1:{port}/{PARTS[0]}", policy)
    assert len(attempts) == 3
    # A host never reached: one attempt, then the error as it is.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if ("http", "127.0.0.1", port) in HttpClient._reached:  # reused from an earlier test
            pytest.skip("the free port was served earlier in this process")
        fresh = f"http://127.0.0.1:{port}/{PARTS[0]}"
        attempts.clear()
        with pytest.raises(UnreachableError, match="refused"):
            head_with_retries(client, fresh, policy)
    assert len(attempts) == 1
