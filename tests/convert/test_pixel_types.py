"""Issue 8, "Mixed pixel types" (acceptance 4): parts mixing half and float EXRs convert
into one store that reads back bit-exact, float32 holding the half values exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from convert_helpers import SHARD, independent_decode, member_bytes, mirror_of, snapshot

from david_data.cli import main
from david_data.convert import convert
from david_data.store import open_store
from david_data.synth import SynthOptions, write_part

HALF = ("SynthHuman_0000.zip", range(0, 3), SynthOptions(pixel_type="half"))
FLOAT = ("SynthHuman_0001.zip", range(5000, 5003), SynthOptions(pixel_type="float"))


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed-parts")
    for name, ids, options in (HALF, FLOAT):
        write_part(root / name, ids, options)
    return root


@pytest.mark.parametrize("profile", ["fast", "compact"])
def test_half_and_float_parts_make_one_float32_store_bit_exact(
    parts: Path, tmp_path: Path, profile: str
) -> None:
    src = mirror_of(parts, tmp_path / "src", HALF[0], FLOAT[0])
    store = tmp_path / "store"
    report = convert(str(src), str(store), profile=profile, shard_size=SHARD)
    assert report.ok and report.samples_ok == 6, report.summary()
    s = open_store(str(store))
    group = zarr.open_group(str(store), mode="r")
    for name, ids, options in (HALF, FLOAT):
        for sid in ids:
            want = independent_decode(member_bytes(src / name, sid))
            assert want["depth"].dtype == np.dtype(
                "float16" if options.pixel_type == "half" else "float32"
            )
            got = s.sample(sid)
            for field in ("depth", "normal"):
                assert got[field].dtype == np.float32
                exact = want[field].astype(np.float32)  # float16 -> float32 is exact
                assert got[field].tobytes() == exact.tobytes(), (sid, field)
                assert group[field][sid].tobytes() == exact.tobytes(), (sid, field)
                if options.pixel_type == "half":
                    assert np.array_equal(got[field].astype(np.float16), want[field])
            for field in ("rgb", "alpha", "intrinsics"):
                assert got[field].tobytes() == want[field].tobytes(), (sid, field)


def test_a_half_part_joins_a_float_store(parts: Path, tmp_path: Path) -> None:
    src = mirror_of(parts, tmp_path / "src", HALF[0], FLOAT[0])
    store = tmp_path / "store"
    assert convert(str(src), str(store), parts=[FLOAT[0]], shard_size=SHARD).ok
    report = convert(str(src), str(store))
    assert report.ok and report.samples_ok == 3, report.summary()
    want = independent_decode(member_bytes(src / HALF[0], 1))["depth"].astype(np.float32)
    assert open_store(str(store)).sample(1)["depth"].tobytes() == want.tobytes()


def test_a_float_part_into_a_half_store_is_a_clear_error(
    parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = mirror_of(parts, tmp_path / "src", HALF[0], FLOAT[0])
    store = tmp_path / "store"
    assert convert(str(src), str(store), parts=[HALF[0]], shard_size=SHARD).ok
    assert open_store(str(store)).sample(0)["depth"].dtype == np.float16
    before = snapshot(store)
    assert main(["convert", str(src), str(store), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if x.startswith("error: ")]
    assert err.strip().endswith(line) and "Traceback" not in out + err
    for text in ("float16", "float32", FLOAT[0], "new STORE"):
        assert text in line, line
    assert snapshot(store) == before
