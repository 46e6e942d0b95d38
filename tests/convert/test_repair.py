"""Issue 8, "Repair" (acceptance 3, the convert side): a replaced part is re-converted,
--retry-errors re-converts shards holding errors, an unreadable zip is reported by name
while the rest converts, a sample id in two parts with different content is a conflict,
and a rerun removes stale temporaries of the shards it writes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from convert_helpers import SHARD, independent_decode, member_bytes, mirror_of, snapshot

from david_data.cli import main
from david_data.convert import convert
from david_data.store import open_store
from david_data.synth import encode_sample, write_extracted, write_part

P0, P1, P2 = "SynthHuman_0000.zip", "SynthHuman_0001.zip", "SynthHuman_0002.zip"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Part 0 (ids 0-3), a replacement of it whose sample 1 has other pixels, part 1
    (ids 5000-5003) and part 2 holding 5002 (identical) and 5003 (different pixels)."""
    root = tmp_path_factory.mktemp("repair-parts")
    write_part(root / P0, range(0, 4))
    other_rgb = encode_sample(7)["rgb_0000007.png"]
    write_part(root / "replaced" / P0, range(0, 4), overrides={"rgb_0000001.png": other_rgb})
    write_part(root / P1, range(5000, 5004))
    other = encode_sample(5010)["rgb_0005010.png"]
    write_part(root / P2, [5002, 5003], overrides={"rgb_0005003.png": other})
    return root


def rgb(store: Path, sid: int) -> np.ndarray:
    return open_store(str(store)).sample(sid)["rgb"]


def test_a_replaced_part_is_reconverted(parts: Path, tmp_path: Path) -> None:
    src = mirror_of(parts, tmp_path / "src", P0, P1)
    store = tmp_path / "store"
    assert convert(str(src), str(store), shard_size=SHARD).ok
    original = independent_decode(member_bytes(src / P0, 1))["rgb"]
    assert np.array_equal(rgb(store, 1), original)
    untouched = snapshot(store / "metadata")["shard-001250.parquet"]

    # Replaced by hand (no manifest): noticed by size/mtime, re-hashed, re-converted.
    shutil.copy(parts / "replaced" / P0, src / P0)
    report = convert(str(src), str(store))
    assert report.ok and report.rewritten == ((0, f"{P0} changed since the shard was written"),)
    new = independent_decode(member_bytes(src / P0, 1))["rgb"]
    assert not np.array_equal(new, original) and np.array_equal(rgb(store, 1), new)
    digest = hashlib.sha256((src / P0).read_bytes()).hexdigest()
    rows = open_store(str(store)).query(
        "SELECT DISTINCT part_sha256 FROM samples WHERE part = 'SynthHuman_0000.zip'"
    )
    assert rows.column(0).to_pylist() == [digest]
    assert snapshot(store / "metadata")["shard-001250.parquet"] == untouched

    # Re-mirrored (the manifest names the new checksum): re-converted from the manifest.
    shutil.copy(parts / P0, src / P0)
    record = {
        "size": (src / P0).stat().st_size,
        "sha256": hashlib.sha256((src / P0).read_bytes()).hexdigest(),
    }
    (src / "manifest.json").write_text(json.dumps({"parts": {P0: record}}))
    assert convert(str(src), str(store)).rewritten == (
        (0, f"{P0} changed since the shard was written"),
    )
    assert np.array_equal(rgb(store, 1), original)
    again = convert(str(src), str(store))
    assert again.shards_written == 0 and again.shards_skipped == 2


def test_retry_errors_reconverts_shards_holding_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(write_extracted(tmp_path / "x", [0, 1, 4]))
    good = (folder / "rgb_0000001.png").read_bytes()
    (folder / "rgb_0000001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    store = tmp_path / "store"
    args = ["convert", str(tmp_path / "x"), str(store), "--shard-size", str(SHARD), "--no-progress"]
    assert main(args) == 1
    assert "sample 1" in capsys.readouterr().out
    (folder / "rgb_0000001.png").write_bytes(good)  # the file is fixed
    assert main(args) == 0  # loose files have no checksum: the shard stays as it was
    assert "0 shards written, 2 already committed" in capsys.readouterr().out
    with pytest.raises(Exception, match="could not be converted"):
        open_store(str(store)).sample(1)
    assert main([*args, "--retry-errors"]) == 0
    out = capsys.readouterr().out
    assert "1 shards written, 1 already committed" in out and "--retry-errors" in out
    assert open_store(str(store)).sample_ids.tolist() == [0, 1, 4]


def test_an_unreadable_zip_is_reported_by_name_and_the_rest_converts(
    parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = mirror_of(parts, tmp_path / "src", P0, P1)
    (src / "SynthHuman_0005.zip").write_bytes(b"PK\x03\x04 this is not a zip at all" * 10)
    store = tmp_path / "store"
    code = main(["convert", str(src), str(store), "--shard-size", str(SHARD), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "part SynthHuman_0005.zip NOT converted" in out and "not a readable zip" in out
    assert "Traceback" not in out + err
    assert open_store(str(store)).sample_ids.tolist() == [0, 1, 2, 3, 5000, 5001, 5002, 5003]


def test_a_sample_in_two_parts_with_different_content_is_a_conflict(
    parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = mirror_of(parts, tmp_path / "src", P1, P2)
    store = tmp_path / "store"
    code = main(["convert", str(src), str(store), "--shard-size", str(SHARD), "--no-progress"])
    out, _ = capsys.readouterr()
    assert code == 1, out
    assert f"sample 5003 is in {P1} and {P2} with different content" in out
    s = open_store(str(store))
    assert s.sample_ids.tolist() == [5000, 5001, 5002]  # 5002 is identical in both: kept once
    (row,) = s.query("SELECT * FROM samples WHERE sample_id = 5003").to_pylist()
    assert row["status"] == "error" and P1 in row["error"] and P2 in row["error"]
    with pytest.raises(Exception, match="could not be converted"):
        s.sample(5003)
    assert s.query("SELECT count(*) FROM samples").column(0)[0].as_py() == 4


def test_a_rerun_removes_stale_temporaries_of_the_shards_it_writes(
    parts: Path, tmp_path: Path
) -> None:
    src = mirror_of(parts, tmp_path / "src", P0, P1)
    store = tmp_path / "store"
    assert convert(str(src), str(store), parts=[P0], shard_size=SHARD).ok
    # What a run killed mid-write leaves: temporaries beside shard 1250's objects, and
    # one beside committed shard 0 (which the next run does not rewrite).
    stale = [
        store / "rgb" / "c" / "1250" / "0" / "0" / "0.3f2a9c1e.tmp",
        store / "depth" / "c" / "1250" / "0" / "0.77aa01bc.tmp",
        store / "metadata" / "shard-001250.parquet.5e5e5e5e.tmp",
    ]
    kept = store / "rgb" / "c" / "0" / "0" / "0" / "0.0badc0de.tmp"
    for path in [*stale, kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a shard")
    assert convert(str(src), str(store)).shards_written == 1
    assert [p for p in stale if p.exists()] == []
    assert kept.exists()
