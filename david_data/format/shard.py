"""One whole Zarr v3 shard object, written at once, and its index, read back.

Layout (zarr v3 ``sharding_indexed`` with ``index_location = "end"`` and the default
index codecs ``[bytes(little), crc32c]``)::

    chunk 0 bytes | chunk 1 bytes | ... | index: S x (offset, nbytes) uint64 LE | crc32c(index) LE

An absent chunk (a sample not converted) has offset = nbytes = 2**64 - 1 and reads as the
fill value. The writer builds the whole object in memory and stores it with one atomic
write, so one task owns one shard and a shard object is never half written.
"""

from __future__ import annotations

import google_crc32c
import numpy as np

from ..errors import StoreError

EMPTY = np.uint64(2**64 - 1)


def index_nbytes(chunks_per_shard: int) -> int:
    """Size of the index at the end of a shard."""
    return 16 * chunks_per_shard + 4


def encode_shard(chunks: list[bytes | None]) -> bytes:
    """Concatenate encoded chunks (None = absent) and append the checksummed index."""
    index = np.full((len(chunks), 2), EMPTY, dtype="<u8")
    offset = 0
    body: list[bytes] = []
    for i, chunk in enumerate(chunks):
        if chunk is None:
            continue
        index[i] = (offset, len(chunk))
        offset += len(chunk)
        body.append(chunk)
    raw_index = index.tobytes()
    crc = np.uint32(google_crc32c.value(raw_index)).astype("<u4").tobytes()
    return b"".join([*body, raw_index, crc])


def decode_index(tail: bytes, chunks_per_shard: int, where: str) -> np.ndarray:
    """Parse and check the index at the end of a shard: (S, 2) uint64 offsets and sizes."""
    if len(tail) != index_nbytes(chunks_per_shard):
        raise StoreError(
            f"{where}: shard is too short to hold its index; the store is damaged", path=where
        )
    raw, crc = tail[:-4], tail[-4:]
    if np.uint32(google_crc32c.value(raw)).astype("<u4").tobytes() != crc:
        raise StoreError(
            f"{where}: shard index checksum does not match; the store is damaged", path=where
        )
    return np.frombuffer(raw, dtype="<u8").reshape(chunks_per_shard, 2)
