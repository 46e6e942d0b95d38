"""Small pure pieces of the fetch: coalescing, id lists, member checks."""

from __future__ import annotations

import struct
import zlib

import pytest

from david_data.catalog.member import MemberStream, MemberTask
from david_data.catalog.reader import coalesce
from david_data.catalog.select import parse_ids, parts_for_ids
from david_data.errors import ConfigError, VerificationError


def task(offset: int, end: int, name: str = "rgb_0000001.png") -> MemberTask:
    return MemberTask(
        sample_id=1, name=name, offset=offset, end_offset=end, compressed_size=0, size=0,
        crc32=0, method=0,
    )  # fmt: skip


def test_neighbours_share_a_request_when_the_gap_is_small() -> None:
    tasks = [task(0, 100), task(100, 200), task(250, 300), task(10_000, 10_100)]
    ranges = coalesce(tasks, max_gap=64, max_bytes=1 << 20)
    assert [(r.start, r.end, len(r.members)) for r in ranges] == [(0, 299, 3), (10_000, 10_099, 1)]
    # A size cap splits between members, never inside one.
    capped = coalesce(tasks[:3], max_gap=64, max_bytes=150)
    assert [(r.start, r.end) for r in capped] == [(0, 99), (100, 199), (250, 299)]


def test_id_lists() -> None:
    assert parse_ids("0-999, 120000") == [(0, 999), (120000, 120000)]
    assert parts_for_ids("0-999,120000") == ["SynthHuman_0000.zip", "SynthHuman_0024.zip"]
    for bad in ("5-3", "x", "298008", ""):
        with pytest.raises(ConfigError):
            parse_ids(bad)


def record(name: str, data: bytes, *, method: int = 0, header_name: str | None = None) -> bytes:
    raw_name = (header_name or name).encode()
    header = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, zlib.crc32(data), len(data), len(data),
        len(raw_name), 0,
    )  # fmt: skip
    return header + raw_name + data


@pytest.mark.parametrize("split", [1, 7, 1000])
def test_a_member_is_checked_whatever_the_chunks(split: int) -> None:
    data = b"pixels " * 100
    blob = record("rgb_0000001.png", data)
    member = MemberTask(
        sample_id=1, name="rgb_0000001.png", offset=0, end_offset=len(blob),
        compressed_size=len(data), size=len(data), crc32=zlib.crc32(data), method=0,
    )  # fmt: skip
    stream = MemberStream(member)
    for at in range(0, len(blob), split):
        stream.feed(memoryview(blob[at : at + split]))
    assert stream.result() == data

    wrong = MemberStream(member)
    wrong.feed(memoryview(record("rgb_0000001.png", data, header_name="rgb_0000002.png")))
    with pytest.raises(VerificationError, match="local header differs from the central directory in: name .'rgb_0000002.png'"):
        wrong.result()
    short = MemberStream(member)
    short.feed(memoryview(blob[:-10]))
    with pytest.raises(VerificationError, match="data truncated"):
        short.result()
