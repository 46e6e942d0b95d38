"""Issue 10 (convert CPU): the cheaper paths give exactly what the plain ones gave.

Metadata statistics on the foreground only (integer selection for the median), the
BGR->RGB swap, shard objects written as buffers, and the ``fast`` profile's Blosc-LZ4
chunks: each against the straightforward computation, and stores written with the
earlier ``fast`` codecs (zstd-1 everywhere) still open and read.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from convert_helpers import SHARD, Mirror

from david_data import facts
from david_data.convert.decode import Sample, decode_png
from david_data.convert.metadata import sample_row
from david_data.convert.run import convert
from david_data.format.codecs import (
    BloscBytes,
    Checksummed,
    ChunkCodec,
    ZstdBytes,
    codec_from_zarr,
    profile_codecs,
)
from david_data.format.layout import SAMPLE_SHAPES, create_store, open_layout
from david_data.format.shard import WRITTEN, encode_shard, shard_buffers
from david_data.store import open_store

H, W = facts.HEIGHT, facts.WIDTH
STAT_COLUMNS = (
    "foreground_fraction",
    "bbox_x_min",
    "bbox_y_min",
    "bbox_x_max",
    "bbox_y_max",
    "depth_min_cm",
    "depth_median_cm",
    "depth_max_cm",
)


def reference_stats(alpha: np.ndarray, depth: np.ndarray) -> dict[str, float | int | None]:
    """The statistics as first written: whole-array numpy, float64 median."""
    fg = alpha > facts.FOREGROUND_THRESHOLD
    row: dict[str, float | int | None] = dict.fromkeys(STAT_COLUMNS)
    row["foreground_fraction"] = float(alpha.mean(dtype=np.float64) / 255.0)
    if fg.any():
        ys, xs = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
        row.update(
            bbox_x_min=int(xs[0]),
            bbox_y_min=int(ys[0]),
            bbox_x_max=int(xs[-1]),
            bbox_y_max=int(ys[-1]),
        )
    valid = depth[fg & (depth < facts.DEPTH_BACKGROUND)].astype(np.float64)
    if valid.size:
        row.update(
            depth_min_cm=float(valid.min()),
            depth_median_cm=float(np.median(valid)),
            depth_max_cm=float(valid.max()),
        )
    return row


def _sample(alpha: np.ndarray, depth: np.ndarray) -> Sample:
    return Sample(
        sample_id=7,
        rgb=np.zeros((H, W, 3), np.uint8),
        alpha=alpha,
        depth=depth,
        normal=np.zeros((H, W, 3), depth.dtype),
        intrinsics=np.array([[800.0, 0, 190], [0, 800, 250], [0, 0, 1]]),
    )


def _same(a: float | int | None, b: float | int | None) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))  # type: ignore[arg-type]


def _cases(dtype: type) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    cases = []
    for fg_share in (0.0, 1e-5, 0.3, 1.0):
        alpha = np.where(rng.uniform(size=(H, W)) < fg_share, 255, rng.integers(0, 128, (H, W)))
        depth = rng.uniform(40, 400, (H, W)).astype(dtype)
        cases.append((f"fg {fg_share}", alpha.astype(np.uint8), depth))
    alpha = rng.integers(0, 256, (H, W)).astype(np.uint8)
    depth = rng.uniform(0, 300, (H, W)).astype(dtype)
    depth[rng.uniform(size=(H, W)) < 0.2] = facts.DEPTH_BACKGROUND  # background inside the mask
    cases.append(("with background", alpha, depth))
    odd = np.zeros((H, W), np.uint8)
    odd[10:13, 20:25] = 200  # 15 pixels: an odd count
    cases.append(("odd count", odd, depth.copy()))
    cases.append(
        ("one pixel", np.pad(np.full((1, 1), 255, np.uint8), ((5, H - 6), (9, W - 10))), depth)
    )
    for label, value in (
        ("zero", 0.0),
        ("negative", -3.5),
        ("-0", -0.0),
        ("inf", np.inf),
        ("-inf", -np.inf),
        ("nan", np.nan),
        ("65504", 65504.0),
    ):
        odd_depth = rng.uniform(40, 400, (H, W)).astype(dtype)
        odd_depth[rng.uniform(size=(H, W)) < 0.01] = value
        cases.append((label, alpha, odd_depth))
    cases.append(("all background", alpha, np.full((H, W), facts.DEPTH_BACKGROUND, dtype)))
    return cases


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_statistics_equal_the_plain_whole_array_computation(dtype: type) -> None:
    for label, alpha, depth in _cases(dtype):
        got = sample_row(_sample(alpha, depth), part="p", part_sha256=None, shard=0)
        want = reference_stats(alpha, depth)
        for column in STAT_COLUMNS:
            assert _same(got[column], want[column]), (label, column, got[column], want[column])


def test_rgb_pngs_decode_to_the_reversed_bgr_channels() -> None:
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    rgb = decode_png(png.tobytes(), "x.png", 3)
    assert rgb.tobytes() == np.ascontiguousarray(bgr[..., ::-1]).tobytes()
    assert rgb.flags.c_contiguous and rgb.flags.writeable


def test_shard_buffers_are_the_shard_object() -> None:
    chunks: list[bytes | None] = [b"a" * 5, None, b"", b"xyz"]
    for fmt in (WRITTEN,):
        assert b"".join(shard_buffers(chunks, fmt)) == encode_shard(chunks, fmt)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_fast_profile_is_lossless_and_declared_as_it_writes(dtype: type) -> None:
    rng = np.random.default_rng(1)
    codecs = profile_codecs("fast", {"depth": np.dtype(dtype), "normal": np.dtype(dtype)})
    arrays = {
        "rgb": rng.integers(0, 256, SAMPLE_SHAPES["rgb"], dtype=np.uint8),
        "alpha": rng.integers(0, 256, SAMPLE_SHAPES["alpha"], dtype=np.uint8),
        "depth": rng.normal(100, 50, SAMPLE_SHAPES["depth"]).astype(dtype),
        "normal": rng.normal(0, 1, SAMPLE_SHAPES["normal"]).astype(dtype),
        "intrinsics": rng.normal(size=(3, 3)),
    }
    arrays["normal"].flat[:4] = [np.nan, np.inf, -0.0, -np.inf]
    for name, array in arrays.items():
        codec = codecs[name]
        back = codec.decode(codec.encode(array), array.dtype, array.shape)
        assert back.tobytes() == array.tobytes(), name
        # the codec a reader rebuilds from zarr.json is the one that wrote
        inner = [
            c.to_dict()
            for c in (codec.zarr_codecs()["serializer"], *codec.zarr_codecs()["compressors"])
        ]
        assert codec_from_zarr(json.loads(json.dumps(inner)), name) == codec, name


def test_stores_written_with_the_earlier_fast_codecs_still_read(tmp_path: Path) -> None:
    """zstd-1 for every array (the ``fast`` profile before issue 10), written by
    zarr-python itself: david-data opens it, reads it, and would extend it with zstd."""
    import zarr
    from zarr.codecs import BytesCodec, ZstdCodec

    store = tmp_path / "old.zarr"
    dtypes = {"depth": np.dtype(np.float16), "normal": np.dtype(np.float16)}
    create_store(str(store), profile="fast", shard_size=50, dtypes=dtypes, source="x")
    group = zarr.open_group(str(store), mode="a")
    rng = np.random.default_rng(2)
    want = {}
    for name in SAMPLE_SHAPES:  # recreate each array with the earlier codecs, then fill one sample
        old = group[name]
        del group[name]
        array = group.create_array(
            name,
            shape=old.shape,
            dtype=old.dtype,
            chunks=old.chunks,
            shards={"shape": (50, *SAMPLE_SHAPES[name]), "index_location": "start"},
            fill_value=0,
            serializer=BytesCodec(endian="little"),
            compressors=(ZstdCodec(level=1),),
        )
        value = (rng.uniform(0, 255, SAMPLE_SHAPES[name])).astype(old.dtype)
        array[5] = value
        want[name] = value
    layout = open_layout(str(store))
    assert all(layout.codecs[n] == ZstdBytes(level=1) for n in SAMPLE_SHAPES)
    got = open_store(str(store)).reader.read([5])[0]
    assert got is not None
    for name, value in want.items():
        assert got[name].tobytes() == value.tobytes(), name
    assert isinstance(profile_codecs("fast", dtypes)["normal"].inner, BloscBytes)  # type: ignore[attr-defined]


def test_reused_sql_connections_answer_the_same_and_stay_locked() -> None:
    """From its second query a connection scans dictionary-encoded strings: same answers,
    plain string results, and still no file access."""
    import pyarrow as pa

    from david_data.errors import ConfigError
    from david_data.format.metadata import SCHEMA
    from david_data.store.query import MetadataSQL

    rows = [
        {
            **dict.fromkeys(SCHEMA.names),
            "sample_id": i,
            "part": facts.part_name(i // 5000),
            "scenario": facts.scenario_of(i),
            "status": "ok" if i % 7 else "error",
            "shard": i // 100,
        }
        for i in range(0, 298008, 997)
    ]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    sql = MetadataSQL(table)
    queries = [
        "SELECT scenario, status, count(*) AS n FROM samples GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT * FROM samples WHERE part = 'SynthHuman_0003.zip' ORDER BY sample_id",
    ]
    first = [sql.query(q) for q in queries]
    again = [sql.query(q) for q in queries]
    for a, b in zip(first, again, strict=True):
        assert a.equals(b)
    assert again[1].schema.equals(SCHEMA)
    with pytest.raises(ConfigError, match="query refused"):
        sql.query("SELECT * FROM read_text('/etc/hostname')")
    sql.close()


EARLIER_FAST = {
    # issue 15: Blosc-LZ4 levels 1 (rgb) and 5 (depth/normal, shuffled), zstd-1 for the rest
    "issue-15": {
        "rgb": (1, 1, "noshuffle"),
        "depth": (5, 4, "shuffle"),
        "normal": (5, 4, "shuffle"),
    },
    # issue 17 before its goal 5: Blosc-LZ4 level 9, zstd-1 for alpha and intrinsics
    "lz4-9": {"rgb": (9, 1, "noshuffle"), "depth": (9, 4, "shuffle"), "normal": (9, 4, "shuffle")},
}
"""``fast`` profiles of earlier releases: (level, typesize, shuffle) of each Blosc-LZ4
array (float32 depth/normal, as the mirror's part 40 has them)."""


@pytest.mark.parametrize("earlier", list(EARLIER_FAST))
def test_a_fast_store_of_an_earlier_release_keeps_its_codecs_when_converted_into(
    mirror: Mirror, store: Path, tmp_path: Path, earlier: str
) -> None:
    """A ``fast`` store written with earlier codecs (checksummed) gets new shards in its
    own codecs, as its ``zarr.json`` declares them, not in the profile's codecs of today."""
    import zarr

    part = "SynthHuman_0040.zip"
    (tmp_path / "mirror").mkdir()
    shutil.copy(mirror.path / part, tmp_path / "mirror" / part)
    old = tmp_path / "old.zarr"
    dtypes = open_layout(str(store)).dtypes
    lz4 = EARLIER_FAST[earlier]
    codecs: dict[str, ChunkCodec] = {
        name: Checksummed(
            inner=BloscBytes(
                cname="lz4", clevel=lz4[name][0], typesize=lz4[name][1], shuffle=lz4[name][2]
            )
            if name in lz4
            else ZstdBytes(level=1)
        )
        for name in SAMPLE_SHAPES
    }
    create_store(str(old), profile="fast", shard_size=SHARD, dtypes=dtypes, source="x")
    group = zarr.open_group(str(old), mode="a")
    for name in SAMPLE_SHAPES:  # the arrays as that release's conversion declared them
        array = group[name]
        assert isinstance(array, zarr.Array)
        shape, dtype, dims = array.shape, array.dtype, array.metadata.dimension_names  # type: ignore[union-attr]
        del group[name]
        group.create_array(
            name,
            shape=shape,
            dtype=dtype,
            chunks=(1, *SAMPLE_SHAPES[name]),
            shards={"shape": (SHARD, *SAMPLE_SHAPES[name]), "index_location": "start"},
            fill_value=0,
            dimension_names=dims,
            **codecs[name].zarr_codecs(),
        )
    report = convert(str(tmp_path / "mirror"), str(old), shard_size=SHARD, workers=1)
    assert report.ok, report.summary()

    layout = open_layout(str(old))
    assert layout.codecs == codecs
    ids = mirror.ids[part]
    got, want = open_store(str(old)).read_batch(ids), open_store(str(store)).read_batch(ids)
    for name in SAMPLE_SHAPES:
        assert got[name].tobytes() == want[name].tobytes(), name
    # the chunk bytes are those of the store's own codecs, not of today's profile
    for name in ("rgb", "alpha", "normal"):
        array = want[name][0]
        shard = Path(layout.shard_path(name, ids[0] // SHARD)).read_bytes()
        assert codecs[name].encode(array) in shard, name
        assert profile_codecs("fast", dtypes)[name].encode(array) not in shard, name


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_blosc_shuffles_by_whole_pixels_losslessly(dtype: type) -> None:
    """A typesize that is no numpy integer size (a normal's whole pixel: 6 or 12 bytes),
    as the benchmark's codec table measures it."""
    rng = np.random.default_rng(3)
    normal = rng.normal(0, 1, SAMPLE_SHAPES["normal"]).astype(dtype)
    codec = BloscBytes(cname="lz4", clevel=9, typesize=3 * normal.itemsize, shuffle="shuffle")
    data = codec.encode(normal)
    assert codec.decode(data, normal.dtype, normal.shape).tobytes() == normal.tobytes()
    assert data[3] == 3 * normal.itemsize  # blosc's header records the typesize it used
