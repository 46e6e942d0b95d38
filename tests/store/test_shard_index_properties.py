"""The shard index, for any chunks Hypothesis finds: what the writer encodes, the reader
decodes (each chunk's bytes found at its offset, an absent chunk marked absent), in both
index locations, with and without the CRC-32C; and a flipped bit or a short index is a
:class:`~david_data.errors.StoreError`, never a wrong offset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from david_data.errors import StoreError
from david_data.format.shard import (
    EMPTY,
    ShardIndexFormat,
    decode_index,
    encode_shard,
    index_range,
    shard_buffers,
)

formats = st.builds(
    ShardIndexFormat, location=st.sampled_from(["start", "end"]), checksum=st.booleans()
)
chunk_lists = st.lists(st.none() | st.binary(min_size=0, max_size=64), min_size=1, max_size=24)


def read_index(shard: bytes, count: int, index: ShardIndexFormat) -> bytes:
    start, end = index_range(index, count, len(shard))
    return shard[start:end]


@settings(max_examples=150, deadline=None)
@given(chunks=chunk_lists, index=formats)
def test_every_chunk_is_found_where_the_index_says(
    chunks: list[bytes | None], index: ShardIndexFormat
) -> None:
    shard = encode_shard(chunks, index)
    assert b"".join(shard_buffers(chunks, index)) == shard
    assert len(shard) == index.nbytes(len(chunks)) + sum(len(c or b"") for c in chunks)
    table = decode_index(read_index(shard, len(chunks), index), len(chunks), "s/0", index)
    assert table.shape == (len(chunks), 2)
    for chunk, (offset, nbytes) in zip(chunks, table.tolist(), strict=True):
        if chunk is None:
            assert offset == nbytes == int(EMPTY)
        else:
            assert shard[offset : offset + nbytes] == chunk


@settings(max_examples=150, deadline=None)
@given(chunks=chunk_lists, data=st.data())
def test_a_flipped_bit_in_a_checked_index_is_an_error(
    chunks: list[bytes | None], data: st.DataObject
) -> None:
    index = ShardIndexFormat(location=data.draw(st.sampled_from(["start", "end"])), checksum=True)
    raw = bytearray(read_index(encode_shard(chunks, index), len(chunks), index))
    bit = data.draw(st.integers(0, 8 * len(raw) - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(StoreError, match="checksum does not match"):
        decode_index(bytes(raw), len(chunks), "s/0", index)


@settings(max_examples=60, deadline=None)
@given(chunks=chunk_lists, index=formats, cut=st.integers(1, 64))
def test_a_short_index_is_an_error(
    chunks: list[bytes | None], index: ShardIndexFormat, cut: int
) -> None:
    raw = read_index(encode_shard(chunks, index), len(chunks), index)
    with pytest.raises(StoreError, match="too short to hold its index"):
        decode_index(raw[: max(0, len(raw) - cut)], len(chunks), "s/0", index)
