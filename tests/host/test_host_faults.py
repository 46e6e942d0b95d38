"""Every fault of the local host is observable as documented and disarms after N uses."""

from __future__ import annotations

import http.client
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from host_helpers import PART_A, PART_B, fetch, read_until_error

from david_data.errors import ConfigError
from david_data.synth.host import Fault, LocalHost


def test_reset_after_exactly_k_bytes_then_disarms(host: LocalHost, served):
    data = served[PART_A]
    armed = host.faults.add(Fault.reset(after_bytes=123_457), times=2, path=PART_A)
    for _ in range(2):
        status, got, err = read_until_error(host, PART_A)
        assert status == 200
        assert isinstance(err, ConnectionResetError)
        assert got == data[:123_457]
    assert armed.fired == 2 and armed.remaining == 0 and host.faults.armed == []
    assert read_until_error(host, PART_A) == (200, data, None)
    gets = host.stats.requests_for(PART_A, "GET")
    assert [(r.bytes_sent, r.faults) for r in gets] == [
        (123_457, ("reset",)),
        (123_457, ("reset",)),
        (len(data), ()),
    ]
    assert host.stats.bytes_served[PART_A] == 2 * 123_457 + len(data)


def test_reset_inside_a_range_counts_from_the_range_start(host: LocalHost, served):
    data = served[PART_A]
    host.faults.add(Fault.reset(after_bytes=1000))
    status, got, err = read_until_error(host, PART_A, {"Range": "bytes=5000-9999"})
    assert status == 206 and isinstance(err, ConnectionResetError)
    assert got == data[5000:6000]


def test_path_filter_and_short_bodies_do_not_use_up_a_fault(host: LocalHost, served):
    armed = host.faults.add(Fault.reset(after_bytes=1000), path=PART_A)
    assert fetch(host, "GET", PART_B)[2] == served[PART_B]  # other file
    assert fetch(host, "HEAD", PART_A)[0] == 200  # no body
    assert fetch(host, "GET", PART_A, {"Range": "bytes=0-999"})[2] == served[PART_A][:1000]
    assert armed.fired == 0 and armed.remaining == 1
    assert read_until_error(host, PART_A)[1] == served[PART_A][:1000]
    assert armed.fired == 1


@pytest.mark.parametrize("code", [503, 429])
def test_status_with_retry_after(host: LocalHost, served, code: int):
    host.faults.add(Fault.status(code, retry_after=2), times=2, path=PART_B)
    status, headers, body = fetch(host, "HEAD", PART_B)
    assert (status, headers["Retry-After"]) == (code, "2")
    status, headers, body = fetch(host, "GET", PART_B, {"Range": "bytes=0-9"})
    assert (status, headers["Retry-After"]) == (code, "2")
    assert b"<Error>" in body and "ETag" not in headers
    assert fetch(host, "GET", PART_B, {"Range": "bytes=0-9"})[0] == 206
    assert host.stats.bytes_served == {PART_B: 10}


def test_status_without_retry_after_and_on_missing_files(host: LocalHost):
    host.faults.add(Fault.status(500, retry_after=None))
    status, headers, _ = fetch(host, "GET", "missing.zip")
    assert status == 500 and "Retry-After" not in headers
    assert fetch(host, "GET", "missing.zip")[0] == 404


def test_ignore_range_sends_the_whole_file(host: LocalHost, served):
    armed = host.faults.add(Fault.ignore_range(), times=1)
    fetch(host, "GET", PART_B)  # not ranged: the fault waits
    assert armed.fired == 0
    status, headers, body = fetch(host, "GET", PART_B, {"Range": "bytes=100-199"})
    assert status == 200 and "Content-Range" not in headers
    assert body == served[PART_B]
    assert fetch(host, "GET", PART_B, {"Range": "bytes=100-199"})[0] == 206


def test_malformed_range(host: LocalHost, served):
    host.faults.add(Fault.malformed_range())
    host.faults.add(Fault.malformed_range("bytes 100-50/300000"))
    for expected in ("bytes garbage", "bytes 100-50/300000"):
        status, headers, body = fetch(host, "GET", PART_B, {"Range": "bytes=100-199"})
        assert (status, headers["Content-Range"]) == (206, expected)
        assert body == served[PART_B][100:200]
    assert fetch(host, "GET", PART_B, {"Range": "bytes=100-199"})[1]["Content-Range"] == (
        "bytes 100-199/300000"
    )


def test_shifted_range_claiming_the_asked_range(host: LocalHost, served):
    data = served[PART_B]
    host.faults.add(Fault.shifted_range(7))
    status, headers, body = fetch(host, "GET", PART_B, {"Range": "bytes=100-199"})
    assert (status, headers["Content-Range"]) == (206, "bytes 100-199/300000")
    assert body == data[107:207] and body != data[100:200]


def test_shifted_range_claiming_the_true_range(host: LocalHost, served):
    data = served[PART_B]
    host.faults.add(Fault.shifted_range(7, claim="true"))
    status, headers, body = fetch(host, "GET", PART_B, {"Range": "bytes=100-199"})
    assert (status, headers["Content-Range"]) == (206, "bytes 107-206/300000")
    assert body == data[107:207]


def test_shifted_range_at_the_end_shifts_backwards(host: LocalHost, served):
    data = served[PART_B]
    armed = host.faults.add(Fault.shifted_range(5))
    assert fetch(host, "GET", PART_B, {"Range": "bytes=0-"})[0] == 206  # no room: unused
    assert armed.fired == 0
    body = fetch(host, "GET", PART_B, {"Range": "bytes=-100"})[2]
    assert body == data[-105:-5]
    assert armed.fired == 1


def test_stall_is_seen_by_a_client_timeout(host: LocalHost, served):
    data = served[PART_A]
    host.faults.add(Fault.stall(after_bytes=50_000, seconds=1.5))
    status, got, err = read_until_error(host, PART_A, timeout=0.4)
    assert status == 200 and isinstance(err, TimeoutError)
    assert got == data[:50_000]
    assert read_until_error(host, PART_A, timeout=0.4) == (200, data, None)


def test_stall_then_the_body_completes(host: LocalHost, served):
    host.faults.add(Fault.stall(after_bytes=10, seconds=0.5))
    t0 = time.monotonic()
    assert fetch(host, "GET", PART_B)[2] == served[PART_B]
    assert time.monotonic() - t0 >= 0.5


def test_rate_cap_paces_the_body(host: LocalHost, served):
    host.faults.add(Fault.rate_cap(100_000), times=1)
    t0 = time.monotonic()
    assert fetch(host, "GET", PART_A, {"Range": "bytes=0-199999"})[2] == served[PART_A][:200_000]
    assert time.monotonic() - t0 > 1.0
    assert fetch(host, "GET", PART_A, {"Range": "bytes=0-199999"})[0] == 206
    assert [r.faults for r in host.stats.requests] == [("rate_cap",), ()]


def test_permanent_rate_cap_applies_to_every_connection(host: LocalHost, served):
    host.faults.add(Fault.rate_cap(100_000), times=None)

    def timed_get(start: int) -> float:
        t0 = time.monotonic()
        body = fetch(host, "GET", PART_A, {"Range": f"bytes={start}-{start + 99_999}"})[2]
        assert body == served[PART_A][start : start + 100_000]
        return time.monotonic() - t0

    with ThreadPoolExecutor(3) as pool:
        durations = list(pool.map(timed_get, [0, 100_000, 200_000]))
    assert all(d > 0.5 for d in durations)
    assert len(host.faults.armed) == 1


def test_faults_combine_ignore_range_and_reset(host: LocalHost, served):
    host.faults.add(Fault.ignore_range())
    host.faults.add(Fault.reset(after_bytes=2000))
    status, got, err = read_until_error(host, PART_B, {"Range": "bytes=100-199"})
    assert status == 200 and isinstance(err, ConnectionResetError)
    assert got == served[PART_B][:2000]
    assert host.stats.requests[-1].faults == ("ignore_range", "reset")


def test_concurrent_requests_use_a_fault_exactly_n_times(host: LocalHost, served):
    host.faults.add(Fault.status(503, retry_after=0), times=3)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: fetch(host, "HEAD", PART_B)[0], range(12)))
    assert sorted(statuses) == [200] * 9 + [503] * 3


def test_replace_during_a_reply_keeps_the_old_bytes_in_flight(host: LocalHost, served):
    old = served[PART_B]
    host.faults.add(Fault.stall(after_bytes=1000, seconds=1))
    c = http.client.HTTPConnection("127.0.0.1", host.port, timeout=30)
    try:
        c.request("GET", "/" + PART_B)
        reply = c.getresponse()
        got = bytearray()
        while len(got) < 1000:  # the reply is under way: its first bytes are here
            got += reply.read1(1000 - len(got))
        host.replace(PART_B, b"new" * 10)
        got += reply.read()
    finally:
        c.close()
    assert bytes(got) == old
    assert fetch(host, "GET", PART_B)[2] == b"new" * 10


def test_clear_and_remove(host: LocalHost, served):
    a = host.faults.add(Fault.status(503), times=None)
    host.faults.add(Fault.ignore_range())
    host.faults.remove(a)
    assert [x.fault.kind for x in host.faults.armed] == ["ignore_range"]
    host.faults.clear()
    assert host.faults.armed == []
    assert fetch(host, "GET", PART_B, {"Range": "bytes=0-0"})[0] == 206


@pytest.mark.parametrize(
    "make",
    [
        lambda: Fault.reset(after_bytes=-1),
        lambda: Fault.stall(after_bytes=0, seconds=0),
        lambda: Fault.status(200),
        lambda: Fault.shifted_range(0),
        lambda: Fault.shifted_range(1, claim="other"),  # type: ignore[arg-type]
        lambda: Fault.rate_cap(0),
        lambda: Fault(kind="nonsense"),  # type: ignore[arg-type]
    ],
)
def test_bad_faults_are_rejected(make):
    with pytest.raises(ConfigError):
        make()


def test_times_must_be_positive(host: LocalHost):
    with pytest.raises(ConfigError):
        host.faults.add(Fault.ignore_range(), times=0)


def test_stop_interrupts_a_stall(tmp_path, served):
    h = LocalHost(tmp_path).start()
    # Longer than the test's timeout: a stop that waited for the stall would fail the test.
    h.faults.add(Fault.stall(after_bytes=10, seconds=3600))
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
    c.request("GET", "/" + PART_B)
    r = c.getresponse()
    got = len(r.read1(10))
    h.stop()
    try:
        while chunk := r.read1(65536):
            got += len(chunk)
    except (OSError, http.client.HTTPException):
        pass
    assert got == 10  # the body was cut, not finished
    c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", h.port), timeout=1).close()


def test_a_reply_is_in_the_stats_while_its_body_is_stalled(host: LocalHost, served):
    host.faults.add(Fault.stall(after_bytes=4096, seconds=0.6))
    c = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    c.request("GET", "/" + PART_A, headers={"Range": "bytes=0-99999"})
    r = c.getresponse()
    got = r.read1(4096)
    while len(got) < 4096:
        got += r.read1(4096 - len(got))
    (record,) = host.stats.requests
    assert (record.status, record.bytes_sent, record.faults) == (206, 4096, ("stall",))
    assert got + r.read() == served[PART_A][:100_000]
    c.close()
    assert host.stats.requests[0].bytes_sent == 100_000
