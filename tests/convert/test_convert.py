"""Acceptance 1 and 2 plus the source, plan and layout details they rest on."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr
from convert_helpers import SHARD, Mirror, independent_decode, member_bytes
from process_helpers import kill_when

from david_data import facts
from david_data.convert.plan import convert_settings, plan_convert
from david_data.convert.run import convert
from david_data.convert.verify_store import verify_store
from david_data.store import open_store
from david_data.synth import SynthOptions, write_extracted, write_part

FIELDS = ("rgb", "alpha", "depth", "normal", "intrinsics")


def test_every_sample_is_bit_exact_and_metadata_matches(mirror: Mirror, store: Path) -> None:
    s = open_store(str(store))
    assert list(s.sample_ids) == mirror.all_ids
    group = zarr.open_group(str(store), mode="r")
    rows = {r["sample_id"]: r for r in s.query("SELECT * FROM samples").to_pylist()}
    for part, ids in mirror.ids.items():
        for sid in ids:
            want = independent_decode(member_bytes(mirror.path / part, sid))
            got = s.sample(sid)
            assert got["sample_id"] == sid and got["scenario"] == facts.scenario_of(sid)
            for name in FIELDS:
                assert got[name].dtype == want[name].dtype, (sid, name)
                assert got[name].tobytes() == want[name].tobytes(), (sid, name)
                # plain zarr-python reads the same bits
                assert group[name][sid].tobytes() == want[name].tobytes(), (sid, name)
            assert got["depth"].dtype == np.float32  # float32 EXRs stay float32
            row = rows[sid]
            alpha, depth, k = want["alpha"], want["depth"], want["intrinsics"]
            fg = alpha > 127
            valid = depth[fg & (depth < 65504)].astype(np.float64)
            ys, xs = np.nonzero(fg)
            assert row["status"] == "ok" and row["error"] is None
            assert row["part"] == part
            assert (row["fx"], row["fy"], row["cx"], row["cy"]) == (
                k[0, 0],
                k[1, 1],
                k[0, 2],
                k[1, 2],
            )
            assert (row["width"], row["height"]) == (384, 512)
            assert row["foreground_fraction"] == pytest.approx(
                alpha.astype(np.float64).sum() / (255 * alpha.size)
            )
            assert (row["bbox_x_min"], row["bbox_y_min"], row["bbox_x_max"], row["bbox_y_max"]) == (
                xs.min(),
                ys.min(),
                xs.max(),
                ys.max(),
            )
            assert row["depth_min_cm"] == valid.min() and row["depth_max_cm"] == valid.max()
            assert row["depth_median_cm"] == pytest.approx(float(np.median(valid)))
            assert row["fov_x_deg"] == pytest.approx(
                math.degrees(2 * math.atan(384 / (2 * k[0, 0])))
            )
            assert row["fov_y_deg"] == pytest.approx(
                math.degrees(2 * math.atan(512 / (2 * k[1, 1])))
            )
    import hashlib

    for part in mirror.ids:
        digest = hashlib.sha256((mirror.path / part).read_bytes()).hexdigest()
        assert {r["part_sha256"] for r in rows.values() if r["part"] == part} == {digest}
    attrs = group.attrs["david_data"]
    assert (
        attrs["format_version"] == 2
        and attrs["profile"] == "fast"
        and attrs["source"] == str(mirror.path)
    )
    assert "created_at" in attrs and attrs["converter_version"]


def test_absent_samples_read_as_fill_and_raise_clearly(store: Path) -> None:
    s = open_store(str(store))
    with pytest.raises(Exception, match="not in"):
        s.sample(10)  # part 0 holds 0..9; shard 2 holds 8..11
    assert not zarr.open_group(str(store), mode="r")["rgb"][10].any()


def test_verify_store_passes_then_finds_a_tampered_chunk(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    assert verify_store(str(store), str(mirror.path)).ok
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    # Rewrite sample 1's alpha with one pixel changed, through zarr-python itself.
    group = zarr.open_group(str(copy), mode="r+")
    alpha = group["alpha"][1]
    alpha[0, 0] ^= 1
    group["alpha"][1] = alpha
    report = verify_store(str(copy), str(mirror.path), sample=None)
    assert not report.ok
    assert {(sid, what) for sid, what, _ in report.differences} == {(1, "alpha")}


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _content(root: Path) -> dict[str, bytes]:
    out = {name: data for name, (data, _) in _snapshot(root).items()}
    out.pop("zarr.json")  # holds created_at
    # Its rows are the shard files' rows; it also records their mtimes.
    out.pop("metadata.parquet", None)
    return out


def test_killed_conversion_resumes_to_an_identical_store(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "killed.zarr"
    code = (
        "import sys, david_data.convert.run as r\n"
        f"r.convert({str(mirror.path)!r}, {str(target)!r}, shard_size={SHARD}, workers=1)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    kill_when(
        proc,
        lambda: bool(list((target / "metadata").glob("*.parquet"))),
        timeout=60,
        what="first shard committed",
    )
    committed = len(list((target / "metadata").glob("*.parquet")))
    total = len(list((store / "metadata").glob("*.parquet")))
    assert 0 < committed < total, "the kill must land midway"
    report = convert(str(mirror.path), str(target), shard_size=SHARD, workers=2)
    assert report.ok and report.shards_skipped >= committed
    assert _content(target) == _content(store)
    assert open_store(str(target)).metadata.equals(_consolidated(target))
    before = _snapshot(target)
    again = convert(str(mirror.path), str(target), shard_size=SHARD, workers=1)
    assert again.shards_written == 0 and again.samples_ok == 0
    assert _snapshot(target) == before  # same files, same bytes, same mtimes: nothing written
    assert not [p for p in target.rglob("*") if p.name.endswith(".tmp")]


def _consolidated(store: Path) -> pa.Table:
    """The rows of the store's consolidated metadata file (it must exist)."""
    return pq.read_table(store / "metadata.parquet").replace_schema_metadata(None)


def test_a_rerun_with_nothing_left_to_do_restores_the_consolidated_file(
    mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    """A run killed after its last shard was committed, before it consolidated: the rerun
    has no shard to write and must still write the consolidated file."""
    import shutil

    target = tmp_path / "store.zarr"
    shutil.copytree(store, target)
    (target / "metadata.parquet").unlink()
    report = convert(str(mirror.path), str(target), shard_size=SHARD, workers=1)
    assert report.ok and report.shards_written == 0
    assert _consolidated(target).equals(open_store(str(store)).metadata)


def test_plan_skips_committed_and_merges_a_shard_spanning_two_parts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    # ids 5000..5005 in part 1, 5006..5009 in part 2: shard 1251 (5004..5007) spans both parts
    write_part(src / "SynthHuman_0001.zip", range(5000, 5006))
    write_part(src / "SynthHuman_0002.zip", range(5006, 5010))
    out = tmp_path / "out.zarr"

    def plan(**kw):  # type: ignore[no-untyped-def]
        return plan_convert(convert_settings(str(src), str(out), shard_size=SHARD, **kw))

    spanning = [j for j in plan(parts=["SynthHuman_0001.zip"]).jobs if j.shard == 1251]
    assert len(spanning) == 1 and spanning[0].parts == [
        "SynthHuman_0001.zip",
        "SynthHuman_0002.zip",
    ]
    assert spanning[0].sample_ids == [5004, 5005, 5006, 5007]
    report = convert(str(src), str(out), parts=["SynthHuman_0001.zip"], shard_size=SHARD)
    assert report.ok
    second = plan(parts=["SynthHuman_0002.zip"])
    assert 1251 in second.committed and [j.shard for j in second.jobs] == [1252]
    convert(str(src), str(out), shard_size=SHARD)
    assert list(open_store(str(out)).sample_ids) == list(range(5000, 5010))
    assert "shards to write: 0" in plan().describe()


def test_extracted_folder_and_compact_profile_round_trip(tmp_path: Path) -> None:
    ids = [98038, 98039, 98040, 98041, 98042]
    options = SynthOptions(folder="inner")
    folder = write_extracted(tmp_path / "x", ids, options)
    out = tmp_path / "compact.zarr"
    report = convert(str(tmp_path / "x"), str(out), profile="compact", shard_size=SHARD)
    assert report.ok, report.summary()
    s = open_store(str(out))
    group = zarr.open_group(str(out), mode="r")  # codecs registered by importing david_data
    for sid in ids:
        files = {
            k: Path(folder, "inner", facts.member_name(k, sid)).read_bytes()
            for k in facts.FILE_KINDS
        }
        want = independent_decode(files)
        got = s.sample(sid)
        for name in FIELDS:
            assert (
                got[name].tobytes() == want[name].tobytes() and got[name].dtype == want[name].dtype
            )
            assert group[name][sid].tobytes() == want[name].tobytes()
    assert s.sample(98040)["depth"].dtype == np.float16
    assert s.attributes["profile"] == "compact"
    assert (
        s.query("SELECT count(*) AS n FROM samples WHERE part = 'SynthHuman'")
        .column("n")[0]
        .as_py()
        == 5
    )


@pytest.mark.skipif(os.cpu_count() == 1, reason="needs 2 CPUs for a process pool")
def test_two_workers_give_the_same_store(mirror: Mirror, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "two.zarr"
    assert convert(str(mirror.path), str(out), shard_size=SHARD, workers=2).ok
    assert _content(out) == _content(store)
