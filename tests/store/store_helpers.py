"""Helpers of the store tests: a tiny mirror, and turning a store into the layout stores
had before (shard index at the end), written with the format's own writer functions."""

from __future__ import annotations

import json
from pathlib import Path

from david_data.format.codecs import ARRAYS
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
