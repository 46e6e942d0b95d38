"""The corrupt fault, fault specs for ``serve``/``python -m david_data.synth.host``, and TLS."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from host_helpers import PART_A, PART_B, fetch

from david_data.errors import ConfigError
from david_data.synth.host import Fault, LocalHost, parse_fault

ROOT = Path(__file__).resolve().parents[2]


def test_corrupt_flips_one_byte_in_flight_only_where_the_body_carries_it(
    host: LocalHost, served: dict[str, bytes]
) -> None:
    data = served[PART_B]
    armed = host.faults.add(Fault.corrupt(1000), times=1, path=PART_B)
    assert fetch(host, "GET", PART_B, {"Range": "bytes=2000-2999"})[2] == data[2000:3000]
    assert armed.fired == 0  # that range does not carry byte 1000
    body = fetch(host, "GET", PART_B, {"Range": "bytes=900-1099"})[2]
    assert body[:100] == data[900:1000] and body[101:] == data[1001:1100]
    assert body[100] == data[1000] ^ 0xFF
    assert armed.fired == 1
    assert fetch(host, "GET", PART_B)[2] == data  # used up: the next read is clean
    assert host.stats.requests_for(PART_B, "GET")[1].faults == ("corrupt",)


def test_fault_specs() -> None:
    fault, times, path = parse_fault("reset:after_bytes=1000,times=2,path=SynthHuman_0001.zip")
    assert (fault, times, path) == (Fault.reset(after_bytes=1000), 2, "SynthHuman_0001.zip")
    assert parse_fault("ignore_range:times=all") == (Fault.ignore_range(), None, None)
    assert parse_fault("status:code=429")[0] == Fault.status(429, retry_after=1)
    assert parse_fault("corrupt:offset=7,xor=1")[0] == Fault.corrupt(7, xor=1)
    assert parse_fault("shifted_range:shift=3,claim=true")[0] == Fault.shifted_range(
        3, claim="true"
    )
    for bad in ("explode", "reset:after_bytes", "reset:after_bytes=x", "stall:colour=red"):
        with pytest.raises(ConfigError):
            parse_fault(bad)


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize("command", ["module", "cli"])
def test_serve_injects_the_faults_it_is_given(
    tmp_path: Path, served: dict[str, bytes], command: str
) -> None:
    program = (
        [sys.executable, "-m", "david_data.synth.host"]
        if command == "module"
        else [sys.executable, "-m", "david_data", "serve"]
    )
    proc, url = _start(
        [*program, str(tmp_path), "--fault", "status:code=503,retry_after=0,times=1",
         "--fault", f"ignore_range:path={PART_B}"]
    )  # fmt: skip
    try:
        assert url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(url + PART_B, headers={"Range": "bytes=0-9"})
        with pytest.raises(urllib.error.HTTPError) as first:
            urllib.request.urlopen(request, timeout=10)
        assert first.value.code == 503
        with urllib.request.urlopen(request, timeout=10) as reply:  # Range ignored once
            assert reply.status == 200 and reply.read() == served[PART_B]
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 206 and reply.read() == served[PART_B][:10]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_serve_rejects_a_bad_fault_spec(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "david_data", "serve", str(tmp_path), "--fault", "boom"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.startswith("error: --fault 'boom': unknown kind")


def test_tls(tmp_path: Path, served: dict[str, bytes]) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "mirror"))
    from net_helpers import make_test_ca

    (tmp_path / "tls").mkdir()
    ca, context = make_test_ca(tmp_path / "tls")
    with LocalHost(tmp_path, tls=context) as host:
        assert host.base_url == f"https://127.0.0.1:{host.port}/"
        client = ssl.create_default_context(cafile=str(ca))
        conn = http.client.HTTPSConnection("127.0.0.1", host.port, context=client, timeout=10)
        conn.request("GET", "/" + PART_A, headers={"Range": "bytes=10-19"})
        reply = conn.getresponse()
        assert reply.status == 206 and reply.read() == served[PART_A][10:20]
        conn.request("GET", "/" + PART_B)  # keep-alive over TLS, sendfile falls back to send
        assert conn.getresponse().read() == served[PART_B]
        conn.close()
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(host.url(PART_B), timeout=10)  # not trusted without the CA
