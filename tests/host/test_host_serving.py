"""The local host serves files like an Azure static-website blob (no faults armed)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from host_helpers import PART_A, PART_B, fetch

from david_data.errors import ConfigError
from david_data.synth.host import LocalHost


def test_head_reports_size_etag_and_dates(
    host: LocalHost, served: dict[str, bytes], tmp_path: Path
):
    status, headers, body = fetch(host, "HEAD", PART_A)
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) == len(served[PART_A])
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/zip"
    etag = headers["ETag"]
    assert etag.startswith('"0x') and etag.endswith('"') and etag == host.etag(PART_A)
    modified = email.utils.parsedate_to_datetime(headers["Last-Modified"]).timestamp()
    assert modified == int((tmp_path / PART_A).stat().st_mtime)
    assert "Content-MD5" not in headers
    assert host.stats.bytes_served == {}


def test_etags_differ_between_files(host: LocalHost):
    assert host.etag(PART_A) != host.etag(PART_B)
    assert fetch(host, "HEAD", PART_A)[1]["ETag"] == fetch(host, "HEAD", PART_A)[1]["ETag"]


def test_full_get_is_byte_identical(host: LocalHost, served: dict[str, bytes]):
    status, headers, body = fetch(host, "GET", PART_A)
    assert status == 200 and "Content-Range" not in headers
    assert body == served[PART_A]


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=100-199", 100, 200),
        ("bytes=999990-", 999990, 1_000_003),
        ("bytes=-50", 1_000_003 - 50, 1_000_003),
        ("bytes=1000000-2000000", 1_000_000, 1_000_003),  # end past EOF is clamped
        ("bytes=0-1000002", 0, 1_000_003),
    ],
)
def test_ranged_get_returns_the_slice(
    host: LocalHost, served: dict[str, bytes], header, start, stop
):
    data = served[PART_A]
    status, headers, body = fetch(host, "GET", PART_A, {"Range": header})
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(data)}"
    assert int(headers["Content-Length"]) == stop - start
    assert body == data[start:stop]


def test_range_past_the_end_is_416(host: LocalHost, served: dict[str, bytes]):
    status, headers, _ = fetch(host, "GET", PART_B, {"Range": "bytes=300000-300010"})
    assert status == 416
    assert headers["Content-Range"] == "bytes */300000"


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "items=0-9", "bytes=9-0"])
def test_unusable_range_headers_get_the_whole_file(host: LocalHost, served, header):
    status, headers, body = fetch(host, "GET", PART_B, {"Range": header})
    assert status == 200 and "Content-Range" not in headers
    assert body == served[PART_B]


def test_head_ignores_range(host: LocalHost, served):
    status, headers, _ = fetch(host, "HEAD", PART_B, {"Range": "bytes=0-9"})
    assert status == 200 and int(headers["Content-Length"]) == len(served[PART_B])


def test_if_match(host: LocalHost, served):
    etag = host.etag(PART_B)
    ok = fetch(host, "GET", PART_B, {"Range": "bytes=5-9", "If-Match": etag})
    assert ok[0] == 206 and ok[2] == served[PART_B][5:10]
    assert fetch(host, "GET", PART_B, {"If-Match": f'"0x0", {etag}'})[0] == 200
    assert fetch(host, "GET", PART_B, {"If-Match": "*"})[0] == 200
    host.reset_stats()
    status, _, _ = fetch(host, "GET", PART_B, {"Range": "bytes=5-9", "If-Match": '"0x123"'})
    assert status == 412
    assert fetch(host, "HEAD", PART_B, {"If-Match": '"0x123"'})[0] == 412
    assert host.stats.bytes_served == {}


@pytest.mark.parametrize("name", ["missing.zip", "sub", "../" + PART_A + "x", "%2e%2e/etc/passwd"])
def test_missing_is_404(host: LocalHost, name: str):
    assert fetch(host, "GET", name)[0] == 404
    assert fetch(host, "HEAD", name)[0] == 404


def test_nested_paths_and_traversal_stay_inside_root(host: LocalHost, served):
    assert fetch(host, "GET", "sub/inner.bin")[2] == b"inner"
    # ".." is clamped at the root, never escaping it
    assert fetch(host, "GET", "../" + PART_B)[2] == served[PART_B]


def test_keep_alive_survives_errors(conn: http.client.HTTPConnection, host: LocalHost, served):
    for path, headers, expected in [
        ("/" + PART_B, {"Range": "bytes=0-3"}, 206),
        ("/nope", {}, 404),
        ("/" + PART_B, {"If-Match": '"x"'}, 412),
        ("/" + PART_B, {"Range": "bytes=999999-"}, 416),
        ("/" + PART_B, {}, 200),
    ]:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        assert r.status == expected
    assert len({r.path for r in host.stats.requests}) == 2


def test_content_md5_when_enabled(tmp_path: Path, served):
    want = base64.b64encode(hashlib.md5(served[PART_A]).digest()).decode()
    with LocalHost(tmp_path, content_md5=True) as h:
        assert fetch(h, "HEAD", PART_A)[1]["Content-MD5"] == want
        assert fetch(h, "GET", PART_A)[1]["Content-MD5"] == want
        assert "Content-MD5" not in fetch(h, "GET", PART_A, {"Range": "bytes=0-9"})[1]
        new = b"new content"
        h.replace(PART_A, new)
        assert (
            fetch(h, "HEAD", PART_A)[1]["Content-MD5"]
            == base64.b64encode(hashlib.md5(new).digest()).decode()
        )


def test_stats_count_body_bytes_per_file(host: LocalHost, served):
    fetch(host, "HEAD", PART_A)
    fetch(host, "GET", PART_A, {"Range": "bytes=10-109"})
    fetch(host, "GET", PART_B)
    fetch(host, "GET", "missing.zip")
    stats = host.stats
    assert stats.bytes_served == {PART_A: 100, PART_B: len(served[PART_B])}
    assert stats.total_bytes == 100 + len(served[PART_B])
    assert [(r.method, r.path, r.range, r.status, r.bytes_sent) for r in stats.requests] == [
        ("HEAD", PART_A, None, 200, 0),
        ("GET", PART_A, "bytes=10-109", 206, 100),
        ("GET", PART_B, None, 200, len(served[PART_B])),
        ("GET", "missing.zip", None, 404, 0),
    ]
    assert [r.status for r in stats.requests_for(PART_A, "GET")] == [206]
    host.reset_stats()
    assert host.stats.requests == () and host.stats.bytes_served == {}


def test_replace_changes_etag_and_content(host: LocalHost, served):
    old = host.etag(PART_B)
    new_etag = host.replace(PART_B, b"A" * 10)
    assert new_etag != old
    status, headers, body = fetch(host, "GET", PART_B)
    assert (status, headers["ETag"], body) == (200, new_etag, b"A" * 10)
    assert fetch(host, "GET", PART_B, {"If-Match": old, "Range": "bytes=0-1"})[0] == 412
    # the same bytes again still make a new version
    assert host.replace(PART_B, b"A" * 10) not in (old, new_etag)
    assert not [p for p in os.listdir(host.root) if p.endswith(".tmp")]


def test_parallel_ranged_reads(host: LocalHost, served):
    data = served[PART_A]
    step = 65_536
    ranges = [(s, min(s + step, len(data)) - 1) for s in range(0, len(data), step)]

    def get(r: tuple[int, int]) -> bytes:
        return fetch(host, "GET", PART_A, {"Range": f"bytes={r[0]}-{r[1]}"})[2]

    with ThreadPoolExecutor(8) as pool:
        assert b"".join(pool.map(get, ranges)) == data
    assert host.stats.bytes_served[PART_A] == len(data)


def test_large_sparse_file_offsets_beyond_4gib(tmp_path: Path):
    size = (5 << 30) + 17
    with open(tmp_path / "big.zip", "wb") as f:
        f.seek(size - 8)
        f.write(b"THE-END!")
    with LocalHost(tmp_path) as h:
        assert int(fetch(h, "HEAD", "big.zip")[1]["Content-Length"]) == size
        status, headers, body = fetch(h, "GET", "big.zip", {"Range": f"bytes={size - 12}-"})
        assert status == 206 and body == b"\0" * 4 + b"THE-END!"
        assert headers["Content-Range"] == f"bytes {size - 12}-{size - 1}/{size}"


def test_root_must_be_a_directory(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a directory"):
        LocalHost(tmp_path / "nope")


def test_stop_returns_with_idle_keep_alive_connections(tmp_path: Path, served):
    h = LocalHost(tmp_path).start()
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    c.request("HEAD", "/" + PART_A)
    c.getresponse().read()  # connection stays open, its handler thread waits for a request
    stopper = threading.Thread(target=h.stop)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()
    c.close()
    with pytest.raises(RuntimeError):
        _ = h.base_url


def test_unsupported_methods_are_refused_and_logged(host: LocalHost, served):
    status, _, _ = fetch(host, "PUT", PART_B)
    assert status == 501
    assert [(r.method, r.path, r.status) for r in host.stats.requests] == [("PUT", PART_B, 501)]
    assert fetch(host, "GET", PART_B)[2] == served[PART_B]


def test_replies_are_sent_without_nagle_delay(host: LocalHost, served: dict[str, bytes]):
    """Headers and body leave in separate writes: without TCP_NODELAY a small ranged reply's
    body waits for the client's delayed ACK (~40 ms each on loopback), which slowed the
    mirror's small requests and skewed the link figures of benchmarks/bench_mirror.py."""
    conn = http.client.HTTPConnection(host.base_url.split("//")[1].rstrip("/"), timeout=10)
    try:
        conn.request("GET", f"/{PART_A}", headers={"Range": "bytes=0-99"})
        reply = conn.getresponse()
        assert reply.read() == served[PART_A][:100]
        with host._lock:  # the connection stays open (keep-alive): the host still tracks it
            sockets = list(host._connections)
        assert sockets
        for sock in sockets:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        conn.close()
