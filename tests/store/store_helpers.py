"""Helpers of the store tests: a tiny mirror, damaging a chunk, and turning a store into
the layouts stores had before (shard index at the end; chunks without checksums),
written with the format's own writer functions."""

from __future__ import annotations

import json
from pathlib import Path

from david_data.format.codecs import ARRAYS, Checksummed
from david_data.format.layout import SAMPLE_SHAPES, open_layout
from david_data.format.reader import ShardReader
from david_data.format.shard import (
    EMPTY,
    WRITTEN,
    ShardIndexFormat,
    decode_index,
    encode_shard,
)
from david_data.synth import SynthOptions

SHARD = 4
"""Samples per shard in these tests."""

PARTS = {
    "SynthHuman_0000.zip": (range(0, 6), SynthOptions()),  # float16 EXRs, face
    "SynthHuman_0019.zip": (
        range(98038, 98044),
        SynthOptions(pixel_type="float"),
    ),  # face + full body
}
ALL_IDS = [i for ids, _ in PARTS.values() for i in ids]

END = ShardIndexFormat(location="end", checksum=True)


def move_index_to_end(store: Path) -> None:
    """Rewrite every shard object and array metadata of ``store`` as stores written before
    ``index_location = "start"`` were: same chunks, index (and CRC) after them."""
    for name in ARRAYS:
        meta_path = store / name / "zarr.json"
        meta = json.loads(meta_path.read_text())
        (sharding,) = meta["codecs"]
        assert sharding["configuration"]["index_location"] == "start"
        sharding["configuration"]["index_location"] = "end"
        meta_path.write_text(json.dumps(meta))
        size = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
        for shard in (store / name / "c").iterdir():
            path = next(p for p in shard.rglob("*") if p.is_file())
            data = path.read_bytes()
            index = decode_index(data[: WRITTEN.nbytes(size)], size, str(path))
            chunks = [
                None if offset == EMPTY else data[int(offset) : int(offset) + int(nbytes)]
                for offset, nbytes in index
            ]
            path.write_bytes(encode_shard(chunks, END))


def chunk_span(store: Path, name: str, sample_id: int) -> tuple[Path, int, int]:
    """Shard object holding ``name`` of ``sample_id``, and the chunk's offset and size."""
    layout = open_layout(str(store))
    shard = sample_id // layout.shard_size
    index = ShardReader(layout).indexes([(name, shard)])[(name, shard)]
    assert index is not None
    offset, nbytes = (int(v) for v in index[sample_id % layout.shard_size])
    return Path(layout.shard_path(name, shard)), offset, nbytes


def flip_silent_byte(store: Path, name: str, sample_id: int) -> None:
    """Flip one bit of the chunk of ``name`` of ``sample_id`` on disk, at a place where its
    codec still decodes the damaged bytes, to wrong values: the damage only the checksum
    can tell (without it, a reader returns those values)."""
    path, offset, nbytes = chunk_span(store, name, sample_id)
    codec = open_layout(str(store)).codecs[name]
    assert isinstance(codec, Checksummed), "a store written now checksums every chunk"
    data = bytearray(path.read_bytes())
    body = bytes(data[offset : offset + nbytes - 4])
    shape, dtype = SAMPLE_SHAPES[name], open_layout(str(store)).dtypes[name]
    clean = codec.inner.decode(body, dtype, shape)
    for pos in range(len(body) // 2, len(body)):
        damaged = bytearray(body)
        damaged[pos] ^= 0x04
        try:
            wrong = codec.inner.decode(bytes(damaged), dtype, shape)
        except Exception:  # noqa: BLE001, S112 - this flip the codec would have noticed
            continue
        if wrong.tobytes() != clean.tobytes():
            data[offset + pos] ^= 0x04
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no silently damaging flip found in the {name} chunk of {sample_id}")


def as_format_1(store: Path) -> None:
    """Rewrite ``store`` as stores of format 1 were: chunks without their CRC-32C (and no
    ``crc32c`` in ``zarr.json``), the consolidated metadata in ``metadata/``."""
    layout = open_layout(str(store))
    for name in ARRAYS:
        meta_path = store / name / "zarr.json"
        meta = json.loads(meta_path.read_text())
        (sharding,) = meta["codecs"]
        inner = sharding["configuration"]["codecs"]
        assert inner[-1] == {"name": "crc32c"}
        sharding["configuration"]["codecs"] = inner[:-1]
        meta_path.write_text(json.dumps(meta))
        fmt, size = layout.shard_index[name], layout.shard_size
        for shard in (store / name / "c").iterdir():
            path = next(p for p in shard.rglob("*") if p.is_file())
            data = path.read_bytes()
            index = decode_index(data[: fmt.nbytes(size)], size, str(path), fmt)
            chunks = [
                None if offset == EMPTY else data[int(offset) : int(offset) + int(nbytes) - 4]
                for offset, nbytes in index
            ]
            path.write_bytes(encode_shard(chunks, fmt))
    group = json.loads((store / "zarr.json").read_text())
    group["attributes"]["david_data"]["format_version"] = 1
    (store / "zarr.json").write_text(json.dumps(group))
    (store / "metadata.parquet").rename(store / "metadata" / "_consolidated.parquet")
