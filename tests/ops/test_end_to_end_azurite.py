"""The whole chain on Azurite through the CLI: mirror from the local host to az://, convert
az:// -> az://, query, infer over az:// images to az:// outputs, evaluate. Each step's data
is checked, not only its exit code. Credentials come from AZURE_STORAGE_CONNECTION_STRING,
as they would for a user."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from david_data import facts, fsutil
from david_data.cli import main
from david_data.exr import read_depth_exr
from david_data.infer.testmodels import build_tiny_model
from david_data.store import open_store
from david_data.synth import SynthOptions, sample_arrays, write_part
from david_data.synth.host import LocalHost

pytestmark = pytest.mark.slow

PARTS = {"SynthHuman_0000.zip": range(0, 4), "SynthHuman_0030.zip": range(150_000, 153_000, 1000)}


def test_mirror_convert_query_infer_evaluate_on_azurite(
    azurite, az_container, prefect_harness, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))
    fs, _ = fsutil.resolve(az_container)

    served = tmp_path / "served"
    served.mkdir()
    for name, ids in PARTS.items():
        write_part(served / name, list(ids), SynthOptions(folder="SynthHuman"))
    digests = {name: hashlib.sha256((served / name).read_bytes()).hexdigest() for name in PARTS}

    # 1. mirror: blobs byte-identical, manifest complete, verify passes.
    mirror = f"{az_container}/mirror"
    with LocalHost(served) as host:
        code = main(
            ["mirror", mirror, "--parts", "0,30", "--base-url", host.base_url, "--no-progress"]
        )
    assert code == 0
    fs.invalidate_cache()
    for name in PARTS:
        assert hashlib.sha256(fs.cat_file(f"{mirror}/{name}")).hexdigest() == digests[name]
    manifest = json.loads(fs.cat_file(f"{mirror}/manifest.json"))
    assert set(manifest["parts"]) == set(PARTS)
    for name, record in manifest["parts"].items():
        assert record["sha256"] == digests[name]
    assert main(["verify", mirror]) == 0

    # 2. convert az:// -> az://: arrays equal the generator's ground truth.
    store_url = f"{az_container}/store"
    assert main(["convert", mirror, store_url, "--workers", "1", "--no-progress"]) == 0
    store = open_store(store_url)
    all_ids = sorted(i for ids in PARTS.values() for i in ids)
    assert store.sample_ids.tolist() == all_ids
    for sid in (0, 152_000):
        truth, got = sample_arrays(sid), store.sample(sid)
        np.testing.assert_array_equal(got["rgb"], truth["rgb"])
        np.testing.assert_array_equal(got["alpha"], truth["alpha"])
        np.testing.assert_array_equal(got["depth"], truth["depth"].astype(np.float16))
        np.testing.assert_array_equal(got["intrinsics"], truth["intrinsics"])

    # 3. query: counts per scenario are the facts' scenarios of the ids.
    capsys.readouterr()
    assert (
        main(
            [
                "query",
                store_url,
                "SELECT scenario, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    expected: dict[str, int] = {}
    for sid in all_ids:
        expected[facts.scenario_of(sid)] = expected.get(facts.scenario_of(sid), 0) + 1
    assert {r["scenario"]: r["n"] for r in rows} == expected

    # 4. infer over az:// images to az:// outputs; a rerun does nothing.
    model = tmp_path / "depth.onnx"
    build_tiny_model(model, "depth", analytic=True)
    photos = f"{az_container}/photos"
    for sid in (0, 1, 150_000):
        ok, png = cv2.imencode(".png", cv2.cvtColor(store.sample(sid)["rgb"], cv2.COLOR_RGB2BGR))
        assert ok
        fs.pipe_file(f"{photos}/batch/{sid}.png", png.tobytes())
    predictions = f"{az_container}/predictions"
    args = [
        "infer",
        f"{photos}/**/*.png",
        predictions,
        "--model-path",
        str(model),
        "--task",
        "depth",
        "--no-progress",
    ]
    assert main(args) == 0
    fs.invalidate_cache()
    for sid in (0, 1, 150_000):
        depth = read_depth_exr(fs.cat_file(f"{predictions}/batch/{sid}.depth.exr")).pixels
        assert depth.shape == (facts.HEIGHT, facts.WIDTH)
        # The analytic model's depth is the mean of the channels, at any resolution.
        rgb = store.sample(sid)["rgb"].astype(np.float32) / 255
        assert abs(float(depth.mean()) - float(rgb.mean())) < 0.01
    runs_before = fs.ls(f"{predictions}/_runs")
    assert main(args) == 0
    fs.invalidate_cache()
    later = [p for p in fs.ls(f"{predictions}/_runs") if p not in runs_before]
    assert all(_rows_done(fs, p) == 0 for p in later)

    # 5. evaluate: per-scenario sample counts and finite metrics, written as JSON.
    evaluation = tmp_path / "evaluation"
    assert (
        main(
            [
                "evaluate",
                store_url,
                "--model-path",
                str(model),
                "--task",
                "depth",
                "-o",
                str(evaluation),
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((evaluation / "summary.json").read_text())
    text = json.dumps(summary)
    assert "depth_rmse" in text and "NaN" not in text
    assert {name: g["samples"] for name, g in summary["groups"].items()} == {
        **expected,
        "all": len(all_ids),
    }


def _rows_done(fs, path: str) -> int:
    import io

    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(fs.cat_file(path)))
    return sum(1 for s in table.column("status").to_pylist() if s == "ok")
