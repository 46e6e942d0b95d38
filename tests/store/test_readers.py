"""Issue 8 "Readers users have" and issue 9's shard reader: the index at the start of each
shard, old stores (index at the end) still read, zarr-python and tensorstore read our
stores bit-exact, arrays come back writable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from store_helpers import ALL_IDS, END, SHARD

from david_data.convert.decode import decode_sample
from david_data.errors import StoreError
from david_data.format.codecs import ARRAYS, FAST_LZ4HC_LEVEL
from david_data.format.layout import open_layout
from david_data.format.shard import (
    WRITTEN,
    ShardIndexFormat,
    decode_index,
    encode_shard,
    parse_index_format,
)
from david_data.sources import open_source
from david_data.store import open_store

CHUNKS = [b"first", None, b"", b"fourth chunk"]


@pytest.mark.parametrize(
    "fmt",
    [WRITTEN, END, ShardIndexFormat(location="start", checksum=False)],
    ids=["start+crc", "end+crc", "start"],
)
def test_shard_objects_round_trip_in_every_index_layout(fmt: ShardIndexFormat) -> None:
    data = encode_shard(CHUNKS, fmt)
    n = fmt.nbytes(len(CHUNKS))
    raw = data[:n] if fmt.location == "start" else data[-n:]
    index = decode_index(raw, len(CHUNKS), "x", fmt)
    back = [None if o == 2**64 - 1 else data[int(o) : int(o) + int(s)] for o, s in index]
    assert back == CHUNKS


def test_a_damaged_index_is_a_store_error_naming_the_shard() -> None:
    data = bytearray(encode_shard(CHUNKS))
    data[3] ^= 1
    with pytest.raises(StoreError, match="rgb/c/7/0/0/0: shard index checksum does not match"):
        decode_index(bytes(data[: WRITTEN.nbytes(4)]), 4, "rgb/c/7/0/0/0")
    with pytest.raises(StoreError, match="too short to hold its index"):
        decode_index(b"", 4, "rgb/c/7/0/0/0")


def test_index_formats_are_read_from_zarr_json_not_assumed() -> None:
    assert parse_index_format({"index_location": "start"}, "a") == WRITTEN
    assert parse_index_format({}, "a") == END  # zarr's default location
    plain = [{"name": "bytes", "configuration": {"endian": "little"}}]
    assert not parse_index_format({"index_codecs": plain}, "a").checksum
    big = [{"name": "bytes", "configuration": {"endian": "big"}}, {"name": "crc32c"}]
    with pytest.raises(StoreError, match="index codecs"):
        parse_index_format({"index_codecs": big}, "a")
    with pytest.raises(StoreError, match="index_location 'middle'"):
        parse_index_format({"index_location": "middle"}, "a")


def test_new_stores_put_the_index_first(store: Path) -> None:
    layout = open_layout(str(store))
    for name in ARRAYS:
        meta = json.loads((store / name / "zarr.json").read_text())
        assert meta["codecs"][0]["configuration"]["index_location"] == "start"
        assert layout.shard_index[name] == WRITTEN
    head = layout.shard_path("rgb", 0)
    with open(head, "rb") as handle:
        index = decode_index(handle.read(WRITTEN.nbytes(SHARD)), SHARD, head)
    assert int(index[0, 0]) == WRITTEN.nbytes(SHARD)  # first chunk right after the index


def test_a_store_with_unknown_index_codecs_is_refused_clearly(store_copy: Path) -> None:
    meta_path = store_copy / "depth" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"][0]["configuration"]["index_codecs"] = [{"name": "bytes"}, {"name": "gzip"}]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        StoreError, match=r"depth/zarr.json: shard index codecs \['bytes', 'gzip'\]"
    ):
        open_store(str(store_copy))


def test_old_stores_with_the_index_at_the_end_still_read(store: Path, old_store: Path) -> None:
    new, old = open_store(str(store)), open_store(str(old_store))
    assert all(f == END for f in old.layout.shard_index.values())
    got, want = old.read_batch(ALL_IDS), new.read_batch(ALL_IDS)
    for name in ARRAYS:
        assert got[name].tobytes() == want[name].tobytes(), name
    import zarr

    group = zarr.open_group(str(old_store), mode="r")
    assert group["normal"][98041].tobytes() == want["normal"][ALL_IDS.index(98041)].tobytes()


def test_arrays_come_back_writable(store: Path) -> None:
    """PyTorch's default_collate warns (and shares memory unsafely) on read-only arrays."""
    s = open_store(str(store))
    one = s.sample(98041)
    batch = s.read_batch([3, 98041])
    for name in ARRAYS:
        assert one[name].flags.writeable and one[name].flags.c_contiguous, name
        assert batch[name].flags.writeable, name
    before = one["depth"][0, 0].copy()
    one["depth"][0, 0] = before + 1  # an array of its own: the store is not touched
    assert s.sample(98041)["depth"][0, 0] == before


def test_zarr_python_and_tensorstore_read_a_fast_store_bit_exact(mirror: Path, store: Path) -> None:
    """A new ``fast`` store declares Blosc-LZ4-HC then CRC-32C for every array (codecs of
    the Zarr v3 spec), and zarr-python and tensorstore read from it the source files'
    arrays, bit for bit."""
    import tensorstore as ts
    import zarr

    s = open_store(str(store))
    want = s.read_batch(ALL_IDS)
    source = open_source(str(mirror))
    decoded = [decode_sample(i, source.read_sample(i)).arrays() for i in ALL_IDS]
    group = zarr.open_group(str(store), mode="r")
    for name in ARRAYS:
        meta = json.loads((store / name / "zarr.json").read_text())
        inner = meta["codecs"][0]["configuration"]["codecs"]
        assert [c["name"] for c in inner] == ["bytes", "blosc", "crc32c"], name
        blosc = inner[1]["configuration"]
        assert (blosc["cname"], blosc["clevel"]) == ("lz4hc", FAST_LZ4HC_LEVEL), name
        array = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(store / name)}},
            read=True,
        ).result()
        via_ts = np.stack([array[i].read().result() for i in ALL_IDS])
        via_zarr = np.stack([group[name][i] for i in ALL_IDS])
        source_bytes = np.stack([d[name] for d in decoded]).tobytes()
        assert via_ts.dtype == want[name].dtype and via_ts.tobytes() == source_bytes, name
        assert via_zarr.tobytes() == source_bytes, name
        assert want[name].tobytes() == source_bytes, name
        assert not array[1000].read().result().any()  # a sample not converted reads as 0


@pytest.mark.azurite
def test_zarr_python_reads_a_store_on_azure_blob_bit_exact(
    mirror: Path, store: Path, azurite, az_container: str
) -> None:  # type: ignore[no-untyped-def]
    """zarr-python over adlfs could not read any chunk with the index at the end (it reads
    that index with a suffix range, which Azure does not serve)."""
    import zarr

    from david_data.convert.run import convert

    options = azurite.storage_options
    url = f"{az_container}/store.zarr"
    report = convert(str(mirror), url, shard_size=SHARD, workers=1, storage_options=options)
    assert report.ok, report.summary()
    want = open_store(str(store)).read_batch(ALL_IDS)
    group = zarr.open_group(url, mode="r", storage_options=options)
    for name in ARRAYS:
        got = np.stack([group[name][i] for i in ALL_IDS])
        assert got.tobytes() == want[name].tobytes(), name
    remote = open_store(url, options).read_batch(ALL_IDS)
    assert all(remote[n].tobytes() == want[n].tobytes() for n in ARRAYS)
    # The consolidated metadata works there too: blob listings fingerprint the shard files.
    from david_data.format import consolidate_metadata
    from david_data.format.consolidated import _merge, list_shard_files

    assert consolidate_metadata(url, options) == len(ALL_IDS)
    layout = open_layout(url, options)
    assert _merge(layout, list_shard_files(layout))[1]  # covers exactly the listed files
    assert open_store(url, options).metadata.equals(open_store(str(store)).metadata)
