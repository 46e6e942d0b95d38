"""A sparse store says so, and ``verify-store`` checks exactly the samples it holds: clean
when they match, a flipped byte in a shard reported by sample, and against the data host
only the parts holding those samples are read (issue 11, "a store converted from a subset
is sparse and says which samples it holds")."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from convert_helpers import SHARD, Mirror

from david_data.catalog import load_catalog, open_catalog_source
from david_data.cli import main
from david_data.convert.run import convert
from david_data.store import open_store
from david_data.synth.host import LocalHost

IDS = "2-6,5001-5003"
HELD = [2, 3, 4, 5, 6, 5001, 5002, 5003]


pytestmark = pytest.mark.usefixtures("catalog_cache")


@pytest.fixture(scope="module")
def sparse(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``david-data convert MIRROR STORE --ids IDS``."""
    out = tmp_path_factory.mktemp("sparse") / "store.zarr"
    args = [str(mirror.path), str(out), "--ids", IDS, "--shard-size", str(SHARD)]
    assert main(["convert", *args, "--no-progress"]) == 0
    return out


def attributes(store: Path) -> dict:
    return json.loads((store / "zarr.json").read_text())["attributes"]["david_data"]


def held(store: Path) -> list[int]:
    return open_store(str(store)).metadata.column("sample_id").to_pylist()


def verify(
    store: Path, source: str, capsys: pytest.CaptureFixture[str], *more: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify-store", str(store), "--against", source, *more])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_sparse_store_from_a_mirror_says_so_and_verifies_clean(
    mirror: Mirror, sparse: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert held(sparse) == HELD
    assert attributes(sparse)["selections"] == [f"--ids {IDS}"]
    assert "selections" not in attributes(store)  # a whole conversion is not sparse

    code, out = verify(sparse, str(mirror.path), capsys)
    assert code == 0, out
    # The mirror's 21 other samples are neither checked nor reported missing.
    assert "8 samples checked, 0 difference(s)" in out, out
    assert f"sparse store: 8 samples held (selection --ids {IDS})" in out, out

    code, out = verify(sparse, str(mirror.path), capsys, "--sample", "3")
    assert code == 0 and "3 samples checked, 0 difference(s)" in out, out

    code, out = verify(store, str(mirror.path), capsys)
    assert code == 0 and "29 samples checked" in out and "sparse" not in out, out


def test_a_flipped_byte_in_a_shard_of_a_sparse_store_is_reported(
    mirror: Mirror, sparse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(sparse, copy)
    # Shard 1 holds samples 4, 5 and 6; its index (offset, nbytes per chunk, uint64 LE)
    # comes first. Flip one byte in the middle of sample 5's rgb chunk.
    shard = copy / "rgb" / "c" / "1" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    offset, nbytes = (int(v) for v in np.frombuffer(bytes(data[: 16 * SHARD]), "<u8")[2:4])
    data[offset + nbytes // 2] ^= 0xFF
    shard.write_bytes(bytes(data))

    code, out = verify(copy, str(mirror.path), capsys)
    assert code == 1, out
    assert "8 samples checked" in out and "sparse store: 8 samples held" in out, out
    assert set(re.findall(r"^  sample (\d+): (\w+)", out, flags=re.M)) <= {
        ("5", "rgb"),
        ("5", "arrays"),
    }
    assert re.search(r"^  sample 5: (rgb|arrays): ", out, flags=re.M), out


def test_a_sparse_store_from_the_host_verifies_against_it_reading_only_its_parts(
    host: LocalHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids, wanted = "5001-5003,200004", [5001, 5002, 5003, 200004]
    out = tmp_path / "remote.zarr"
    args = [host.base_url, str(out), "--ids", ids, "--shard-size", str(SHARD), "--no-progress"]
    assert main(["convert", *args]) == 0
    assert held(out) == wanted

    host.reset_stats()
    code, text = verify(out, host.base_url, capsys)
    stats = host.stats
    assert code == 0, text
    assert f"sparse store: 4 samples held (selection --ids {ids})" in text, text

    # Only the two parts holding the samples were asked (not the host's 61), their
    # catalogs came from the cache (HEAD), and every GET touched held samples only.
    parts = ["SynthHuman_0001.zip", "SynthHuman_0040.zip"]
    assert {r.path for r in stats.requests} == set(parts)
    catalog = load_catalog(open_catalog_source(host.base_url), parts)
    extents = [
        (row["part"], row["offset"], row["end_offset"], row["sample_id"])
        for row in catalog.members.to_pylist()
    ]
    gets = [r for r in stats.requests if r.method == "GET"]
    assert gets
    for r in gets:
        assert r.range is not None and r.status == 206
        start, end = (int(x) for x in r.range.removeprefix("bytes=").split("-"))
        touched = {sid for p, a, b, sid in extents if p == r.path and a <= end and b > start}
        assert touched <= set(wanted), (r.path, r.range, sorted(touched - set(wanted)))


def test_a_whole_store_verified_against_the_host_reads_only_the_parts_it_holds(
    host: LocalHost, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host.reset_stats()
    code, out = verify(store, host.base_url, capsys)
    assert code == 0 and "29 samples checked, 0 difference(s)" in out, out
    assert {r.path for r in host.stats.requests} == {
        "SynthHuman_0000.zip",
        "SynthHuman_0001.zip",
        "SynthHuman_0019.zip",
        "SynthHuman_0040.zip",
    }


def test_every_selection_of_a_store_is_recorded_once(
    mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grown.zarr"
    assert convert(str(mirror.path), str(out), ids="0-1", shard_size=SHARD).ok
    assert convert(str(mirror.path), str(out), ids=5000, parts="1").ok
    assert convert(str(mirror.path), str(out), ids="0-1").ok  # nothing new: not listed again
    assert convert(str(mirror.path), str(out), parts="19").ok  # whole part into a sparse store
    assert convert(str(mirror.path), str(out), parts="40", limit=2, seed=3).ok
    assert attributes(out)["selections"] == [
        "--ids 0-1",
        "--ids 5000 --parts 1",
        "every sample of --parts 19",
        "--limit 2 --seed 3 --parts 40",
    ]
    assert len(held(out)) == 2 + 1 + 8 + 2
    code, text = verify(out, str(mirror.path), capsys)
    assert code == 0, text
    assert "sparse store: 13 samples held (selection --ids 0-1; --ids 5000 --parts 1;" in text


def test_a_source_lacking_a_part_of_a_sparse_store_is_one_error_line(
    mirror: Mirror, sparse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(mirror.path / "SynthHuman_0000.zip", partial)
    code, out = verify(sparse, str(partial), capsys)
    assert code == 2, out
    assert "error: SRC" in out and "lacks SynthHuman_0001.zip" in out and "Traceback" not in out
