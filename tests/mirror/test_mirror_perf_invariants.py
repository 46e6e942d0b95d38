"""What the mirror's performance work must not lose: resume state that is cheap to write
yet never trusts bytes that did not land, pieces in file order that end together, bytes
kept across a reset, and connections kept alive between pieces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mirror_helpers import FAST, PARTS, same_bytes

from david_data.mirror import state as state_module
from david_data.mirror._splice import Splicer
from david_data.mirror.segmented import FetchOptions, fetch_file, part_paths
from david_data.mirror.state import PartState, Segment, StateFile, load_state, plan_segments
from david_data.mirror.transfer import Transfer
from david_data.net.http import HttpClient
from david_data.synth.host import Fault, LocalHost

MiB = 1 << 20


def _state(size: int, segments: list[Segment]) -> PartState:
    return PartState(
        url="u", size=size, etag='"e"', last_modified=None, content_md5=None, segments=segments
    )


def test_a_torn_record_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "f.state"
    state = _state(100, plan_segments(100, 2, 64))
    records = StateFile(path, state)
    state.segments[0].done = 10
    records.write(state.to_json())
    state.segments[0].done = 20
    records.write(state.to_json())
    records.close()
    assert load_state(path).segments[0].done == 20  # type: ignore[union-attr]
    raw = bytearray(path.read_bytes())
    half = len(raw) // 2
    newer = 0 if b'"seq":2' in raw[:half] else half  # the slot written last
    raw[newer + 40] ^= 0xFF  # a write torn by a kill or a crash
    path.write_bytes(bytes(raw))
    assert load_state(path).segments[0].done == 10  # type: ignore[union-attr]
    raw[(half - newer) + 40] ^= 0xFF  # both slots damaged: start over, never guess
    path.write_bytes(bytes(raw))
    assert load_state(path) is None


def test_written_bytes_are_trusted_only_within_the_same_boot(tmp_path: Path) -> None:
    """A killed process leaves its writes in the page cache; a reboot may not."""
    state = _state(100, [Segment(start=0, end=99, done=60, durable=40)])
    data = state.to_json()
    assert PartState.from_json(data).segments[0].done == 60
    rebooted = PartState.from_json({**data, "boot_id": "another boot"})
    assert rebooted.segments[0].done == rebooted.segments[0].durable == 40
    version_1 = {**data, "version": 1, "segments": [[0, 99, 60]]}  # its done was flushed
    path = tmp_path / "old.state"
    path.write_text(json.dumps(version_1))
    old = load_state(path)
    assert old is not None and old.segments[0].done == old.segments[0].durable == 60


def test_progress_is_recorded_often_and_flushed_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 4 * MiB
    part, path = tmp_path / "f.part", tmp_path / "f.state"
    part.write_bytes(bytes(size))
    state = _state(size, plan_segments(size, 1, size))
    transfer = Transfer(
        part,
        path,
        state,
        connections=1,
        min_split=MiB,
        checkpoint_bytes=256 * 1024,
        checkpoint_seconds=60,
    )
    try:
        segment = transfer.take()
        assert segment is not None
        transfer.wrote(segment, 300 * 1024)
        recorded = load_state(path)
        assert recorded is not None
        assert recorded.segments[0].done == 300 * 1024 and recorded.segments[0].durable == 0
        transfer.checkpoint()
        flushed = load_state(path)
        assert flushed is not None and flushed.segments[0].durable == 300 * 1024
        # Where the boot cannot be told, a resume trusts only what was flushed.
        monkeypatch.setattr(state_module, "BOOT_ID", None)
        transfer.wrote(segment, 300 * 1024)
        transfer.record()
        unknown = load_state(path)
        assert unknown is not None and unknown.segments[0].done == 300 * 1024
    finally:
        transfer.close_file()


def test_pieces_go_in_file_order_and_the_connections_end_together(tmp_path: Path) -> None:
    """K connections at one speed: each piece is taken in file order and pieces shrink as
    the file fills, so the prefix the check reads keeps up with the download; all K
    connections finish within one small piece of each other."""
    size, k, step = 200 * MiB + 12345, 4, 64 * 1024
    part = tmp_path / "f.part"
    with open(part, "wb") as handle:
        handle.truncate(size)
    state = _state(size, plan_segments(size, k, 32 * MiB))
    transfer = Transfer(
        part,
        tmp_path / "f.state",
        state,
        connections=k,
        min_split=MiB,
        checkpoint_bytes=64 * MiB,
        checkpoint_seconds=60,
    )
    try:
        current: list[Segment | None] = [transfer.take() for _ in range(k)]
        starts = [s.start for s in current if s is not None]
        finished = [0] * k
        tick = written = 0
        lag_near_end: int | None = None
        while any(current):
            tick += 1
            for i, segment in enumerate(current):
                if segment is None:
                    continue
                n = min(step, segment.length - transfer.written(segment))
                transfer.wrote(segment, n)
                written += n
                if lag_near_end is None and size - written < 8 * MiB:
                    lag_near_end = written - transfer.available(0)
                if transfer.written(segment) == segment.length:
                    current[i] = transfer.take()
                    if current[i] is None:
                        finished[i] = tick
                    else:
                        starts.append(current[i].start)  # type: ignore[union-attr]
        assert starts[0] == size - 4 * MiB  # the central directory's end first
        assert starts[1:] == sorted(starts[1:])  # then in file order
        assert max(finished) - min(finished) <= MiB // step  # together, within a piece
        # Near the end, little of what was written waits beyond the prefix for the check
        # (with one 50 MB range per connection, 48 MB did).
        assert lag_near_end is not None and lag_near_end <= 8 * MiB
        assert transfer.available(0) == size
        assert len(starts) < 40  # a few dozen requests, not one per MiB
    finally:
        transfer.close_file()


class _CountingClient(HttpClient):
    """A real client that counts the connections it opens."""

    connects = 0

    def _connect(self, *args: object, **kwargs: object) -> None:
        type(self).connects += 1
        super()._connect(*args, **kwargs)  # type: ignore[arg-type]


def test_connections_are_kept_alive_between_pieces(
    tmp_path: Path, host: LocalHost, served: Path
) -> None:
    name = PARTS[0]
    options = FetchOptions(segments=2, segment_size=128 * 1024, min_split=64 * 1024, policy=FAST)
    _CountingClient.connects = 0
    target = tmp_path / "dest" / name
    fetch_file(
        host.url(name), target, client=_CountingClient(), check=lambda r, i: True, options=options
    )
    assert same_bytes(served / name, part_paths(target)[0])
    gets = host.stats.requests_for(name, "GET")
    assert len(gets) >= 6
    assert _CountingClient.connects <= 3  # the two connections and the caller's HEAD


def test_bytes_received_before_a_reset_are_kept(
    tmp_path: Path, host: LocalHost, served: Path
) -> None:
    """A reset loses nothing already read: the retry asks for the bytes after them."""
    name = PARTS[0]
    host.faults.add(Fault.rate_cap(2_000_000), times=None)
    host.faults.add(Fault.reset(after_bytes=300_000), times=1, path=name)
    options = FetchOptions(segments=1, policy=FAST)
    target = tmp_path / "dest" / name
    fetch_file(
        host.url(name), target, client=HttpClient(), check=lambda r, i: True, options=options
    )
    assert same_bytes(served / name, part_paths(target)[0])
    ranges = [r.range for r in host.stats.requests_for(name, "GET")]
    retried = [int(r.split("=")[1].split("-")[0]) for r in ranges if r and not r.endswith("-")]
    assert any(100_000 <= start <= 300_000 for start in retried), ranges


def test_plain_http_bodies_go_to_the_file_by_splice(
    tmp_path: Path, host: LocalHost, served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over plain HTTP the body moves socket → pipe → file (one copy, not two through a
    buffer), bytes identical, and a reset mid-body still keeps the bytes before it."""
    spliced: list[int] = []
    move = Splicer.move

    def counting(self: Splicer, fd: int, offset: int, count: int, url: str) -> int:
        n = move(self, fd, offset, count, url)
        spliced.append(n)
        return n

    monkeypatch.setattr(Splicer, "move", counting)
    name = PARTS[0]
    host.faults.add(Fault.rate_cap(4_000_000), times=None)
    host.faults.add(Fault.reset(after_bytes=300_000), times=1, path=name)
    target = tmp_path / "dest" / name
    fetch_file(
        host.url(name),
        target,
        client=HttpClient(),
        check=lambda r, i: True,
        options=FetchOptions(segments=2, policy=FAST),
    )
    assert same_bytes(served / name, part_paths(target)[0])
    size = (served / name).stat().st_size
    assert sum(spliced) >= size // 2, (sum(spliced), size)
    assert any("reset" in r.faults for r in host.stats.requests_for(name, "GET"))
