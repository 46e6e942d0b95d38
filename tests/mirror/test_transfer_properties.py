"""The transfer schedule (``Transfer.take`` and the ``_split`` it makes) for any file
size, connection count and interleaving of connections Hypothesis finds, from a fresh
start or a resumed state: the segments always tile the file, a split never cuts off a
written byte, no byte is handed to two connections, every piece cut off holds at least
``min_split`` bytes, and at the end every byte was written exactly once."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from david_data.mirror.state import PartState, Segment, plan_segments
from david_data.mirror.transfer import TAIL_BYTES, Transfer

KiB = 1 << 10


def assert_tiles(segments: list[Segment], size: int) -> None:
    assert segments[0].start == 0 and segments[-1].end == size - 1
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(segments))
    assert all(s.length > 0 for s in segments)


@settings(max_examples=120, deadline=None)
@given(
    size=st.integers(1, TAIL_BYTES + 2048 * KiB),
    connections=st.integers(1, 6),
    segments=st.integers(1, 8),
    min_split=st.sampled_from([1, 4 * KiB, 64 * KiB, 256 * KiB]),
    data=st.data(),
)
def test_the_schedule_hands_out_every_byte_once(
    size: int, connections: int, segments: int, min_split: int, data: st.DataObject
) -> None:
    planned = plan_segments(size, connections, -(-size // segments))
    resumed = data.draw(st.booleans())
    for s in planned:  # a resumed state: some bytes of some segments already written
        if resumed:
            s.done = s.durable = data.draw(st.integers(0, s.length))
    before = sum(s.done for s in planned)
    with tempfile.TemporaryDirectory() as folder:
        part = Path(folder) / "f.part"
        part.write_bytes(b"")
        state = PartState(url="http://h/f", size=size, etag=None, last_modified=None,
                          content_md5=None, segments=planned)  # fmt: skip
        transfer = Transfer(
            part, Path(folder) / "f.state", state, connections=connections, min_split=min_split,
            checkpoint_bytes=1 << 40, checkpoint_seconds=1e9,
        )  # fmt: skip
        try:
            written = drive(transfer, size, connections, min_split, data)
        finally:
            transfer.close_file()
    assert written == size - before
    assert all(transfer.written(s) == s.length for s in state.segments)
    assert transfer.available(0) == size


def drive(
    transfer: Transfer, size: int, connections: int, min_split: int, data: st.DataObject
) -> int:
    """Run ``connections`` simulated connections in an order Hypothesis picks, each
    writing its piece in chunks; check the schedule after every step."""
    held: dict[int, Segment] = {}  # connection -> the piece it is writing
    owner: dict[int, int] = {}  # id(segment) -> connection
    written = 0
    while True:
        idle = [c for c in range(connections) if c not in held]
        if idle and transfer.has_work:
            count = len(transfer.state.segments)
            done = {id(s): transfer.written(s) for s in transfer.state.segments}
            segment = transfer.take()
            assert segment is not None
            assert id(segment) not in owner, "a piece handed out twice"
            assert_tiles(transfer.state.segments, size)
            assert transfer.written(segment) == done[id(segment)] <= segment.length
            if len(transfer.state.segments) > count:  # it was split: the rest waits
                (rest,) = [s for s in transfer.state.segments if id(s) not in done]
                assert rest.start == segment.end + 1 and transfer.written(rest) == 0
                assert rest.length >= min_split
                assert segment.length - done[id(segment)] >= min_split
            c = data.draw(st.sampled_from(idle))
            held[c], owner[id(segment)] = segment, c
            continue
        busy = [c for c in held if transfer.written(held[c]) < held[c].length]
        for c in [c for c in held if c not in busy]:
            del held[c]  # finished (or handed out already complete)
        if not busy:
            if not transfer.has_work:
                return written
            continue
        c = data.draw(st.sampled_from(busy))
        segment = held[c]
        left = segment.length - transfer.written(segment)
        n = data.draw(st.integers(1, left)) if data.draw(st.booleans()) else left
        transfer.wrote(segment, n)
        written += n
