"""One whole Zarr v3 shard object, written at once, and its index, read back.

Layout (zarr v3 ``sharding_indexed``). Stores written now put the index first
(``index_location = "start"``), so a reader finds it with a plain ranged read of the first
bytes: zarr-python reads an ``"end"`` index with a suffix range, which Azure Blob Storage
does not serve. Stores written before keep their index at the end and still read::

    "start": index: S x (offset, nbytes) uint64 LE | crc32c(index) LE | chunk 0 | chunk 1 | ...
    "end":   chunk 0 | chunk 1 | ... | index: S x (offset, nbytes) uint64 LE | crc32c(index) LE

Offsets count from the start of the shard object. The index codecs are ``bytes``
(little-endian) optionally followed by ``crc32c``, as the array's ``zarr.json`` declares
them (:func:`parse_index_format`). An absent chunk (a sample not converted) has
offset = nbytes = 2**64 - 1 and reads as the fill value. The writer encodes the whole
shard in memory and stores it with one atomic write (locally: its buffers written in
turn to a temporary file, then renamed), so one task owns one shard and a shard object
is never half written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import StoreError
from .checksum import crc32c

EMPTY = np.uint64(2**64 - 1)
LOCATIONS = ("start", "end")


@dataclass(frozen=True, kw_only=True)
class ShardIndexFormat:
    """Where a shard's index sits and whether a CRC-32C follows it."""

    location: str = "start"
    checksum: bool = True

    def nbytes(self, chunks_per_shard: int) -> int:
        """Size of the encoded index of a shard of ``chunks_per_shard`` chunks."""
        return 16 * chunks_per_shard + (4 if self.checksum else 0)

    def zarr_index_codecs(self) -> list[dict[str, Any]]:
        """The ``index_codecs`` of the array's ``zarr.json``."""
        codecs: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": "little"}}]
        return [*codecs, {"name": "crc32c"}] if self.checksum else codecs


WRITTEN = ShardIndexFormat(location="start", checksum=True)
"""The index format of every shard written now."""


def parse_index_format(config: dict[str, Any], where: str) -> ShardIndexFormat:
    """The index format declared by a ``sharding_indexed`` codec's configuration."""
    location = config.get("index_location", "end")
    if location not in LOCATIONS:
        raise StoreError(
            f"{where}: shard index_location {location!r} is not 'start' or 'end'; "
            "the array metadata is damaged or not written by david-data",
            path=where,
        )
    codecs = config.get("index_codecs") or [{"name": "bytes"}, {"name": "crc32c"}]
    names = [c.get("name") for c in codecs]
    endian = (codecs[0].get("configuration") or {}).get("endian", "little")
    if names not in (["bytes"], ["bytes", "crc32c"]) or endian != "little":
        raise StoreError(
            f"{where}: shard index codecs {names} ({endian}-endian) are not ones david-data "
            "reads (bytes little-endian, optionally crc32c); open this store with "
            "zarr.open_group instead",
            path=where,
        )
    return ShardIndexFormat(location=location, checksum=names == ["bytes", "crc32c"])


def shard_buffers(chunks: list[bytes | None], index: ShardIndexFormat = WRITTEN) -> list[bytes]:
    """One shard object as the buffers to write in order (the index, then the encoded
    chunks, or the other way round as ``index`` says; None = absent chunk): a local
    writer hands them to the file one by one instead of joining ~100 MB first."""
    table = np.full((len(chunks), 2), EMPTY, dtype="<u8")
    offset = index.nbytes(len(chunks)) if index.location == "start" else 0
    body: list[bytes] = []
    for i, chunk in enumerate(chunks):
        if chunk is None:
            continue
        table[i] = (offset, len(chunk))
        offset += len(chunk)
        body.append(chunk)
    raw = table.tobytes()
    encoded = raw + crc32c(raw) if index.checksum else raw
    return [encoded, *body] if index.location == "start" else [*body, encoded]


def encode_shard(chunks: list[bytes | None], index: ShardIndexFormat = WRITTEN) -> bytes:
    """One shard object: encoded chunks (None = absent) and their index, laid out as
    ``index`` says (the format of the array the shard belongs to)."""
    return b"".join(shard_buffers(chunks, index))


def index_range(
    index: ShardIndexFormat, chunks_per_shard: int, size: int | None
) -> tuple[int, int]:
    """Byte range ``(start, end)`` of the index in a shard object of ``size`` bytes
    (the size is needed only for an index at the end)."""
    n = index.nbytes(chunks_per_shard)
    if index.location == "start":
        return 0, n
    if size is None:
        raise ValueError("an index at the end of a shard needs the shard's size")
    return max(0, size - n), size


def decode_index(
    data: bytes, chunks_per_shard: int, where: str, index: ShardIndexFormat = WRITTEN
) -> np.ndarray:
    """Parse and check a shard's index bytes: (S, 2) uint64 offsets and sizes."""
    if len(data) != index.nbytes(chunks_per_shard):
        raise StoreError(
            f"{where}: shard object is too short to hold its index ({len(data)} of "
            f"{index.nbytes(chunks_per_shard)} bytes); the store is damaged",
            path=where,
        )
    raw = data[:-4] if index.checksum else data
    if index.checksum and crc32c(raw) != data[-4:]:
        raise StoreError(
            f"{where}: shard index checksum does not match; the store is damaged",
            path=where,
        )
    return np.frombuffer(raw, dtype="<u8").reshape(chunks_per_shard, 2)
