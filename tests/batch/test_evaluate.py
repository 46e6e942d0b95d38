"""Evaluation against a real converted store whose ground truth is built by hand.

The analytic tiny model predicts, per pixel of the BGR input in [0, 1]: depth
(B + G + R) / 3, normal (B - 0.5, G - 0.5, 1) before normalising, foreground
clip(1.5 R - 0.25). A SynthHuman image is 384 x 512, so pre-processing only pads it to
512 x 512 (no resampling) and post-processing crops the padding: the predictions are
exact functions of the pixels, and ground truth can be written to match them exactly
(a "perfect" sample) or to differ by a known amount (an "offset" sample).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from batch_helpers import cli, evaluate, infer

from david_data.exr import encode_exr
from david_data.facts import HEIGHT, WIDTH, member_name, scenario_of
from david_data.infer.evaluate import EvalSettings

PERFECT, OFFSET = 98_039, 98_040  # the last face sample and the first full-body one
DEPTH_SCALE, DEPTH_SHIFT, DEPTH_ERROR = -100.0, 300.0, 2.0
ANGLE = 15.0
EXTRA = (slice(20, 60), slice(20, 60))  # background pixels the offset sample calls foreground


def _image_bgr() -> np.ndarray:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0] = (cols // 2 * 7) % 256  # B: equal in each pair of columns
    image[..., 1] = (rows * 3) % 256  # G
    image[100:412, 96:288, 2] = 255  # R: 255 on the figure -> foreground 1, else 0
    return image


def _truth(offset: bool) -> dict[str, np.ndarray]:
    bgr = _image_bgr().astype(np.float64) / 255.0
    pred_depth = bgr.mean(axis=2)
    alpha = np.where(bgr[..., 2] > 0.5, 255, 0).astype(np.uint8)
    if offset:
        alpha[EXTRA] = 255
    depth = DEPTH_SCALE * pred_depth + DEPTH_SHIFT
    if offset:  # +e / -e in each pair of columns: orthogonal to 1 and to the prediction
        sign = np.where(np.arange(WIDTH) % 2 == 0, 1.0, -1.0)[None, :]
        depth = depth + DEPTH_ERROR * sign
    depth = np.where(alpha > 127, depth, 65504.0)
    p = np.stack([bgr[..., 0] - 0.5, bgr[..., 1] - 0.5, np.ones_like(pred_depth)], axis=2)
    p /= np.linalg.norm(p, axis=2, keepdims=True)
    normal = p
    if offset:  # rotate by ANGLE towards a unit vector perpendicular to the prediction
        u = np.cross(p, np.array([1.0, 0.0, 0.0]))
        u /= np.linalg.norm(u, axis=2, keepdims=True)
        normal = np.cos(np.radians(ANGLE)) * p + np.sin(np.radians(ANGLE)) * u
    return {"alpha": alpha, "depth": depth.astype(np.float32), "normal": normal.astype(np.float32)}


def _files(sample_id: int, offset: bool) -> dict[str, bytes]:
    truth = _truth(offset)
    return {
        member_name("rgb", sample_id): cv2.imencode(".png", _image_bgr())[1].tobytes(),
        member_name("alpha", sample_id): cv2.imencode(".png", truth["alpha"])[1].tobytes(),
        member_name("depth", sample_id): encode_exr(truth["depth"], ("Y",)),
        member_name("normal", sample_id): encode_exr(truth["normal"], ("X", "Y", "Z")),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    from david_data.convert import convert
    from david_data.synth.generator import write_part

    root = tmp_path_factory.mktemp("evalstore")
    (root / "src").mkdir()
    write_part(
        root / "src" / "SynthHuman_0019.zip",
        [PERFECT, OFFSET],
        overrides={**_files(PERFECT, False), **_files(OFFSET, True)},
    )
    report = convert(str(root / "src"), str(root / "store"))
    assert getattr(report, "failed", 0) in (0, [], ())
    return str(root / "store")


def test_perfect_prediction_scores_zero_and_a_known_offset_its_error(
    store: str, models: dict[str, Path], tmp_path: Path
) -> None:
    report = evaluate(
        EvalSettings(
            store=store,
            output=str(tmp_path / "eval"),
            model_path=str(models["analytic"]),
            task="multitask",
            batch_size=2,
        )
    )
    evaluation = report.evaluation
    assert not evaluation.failures and not report.interrupted
    by_id = {r["sample_id"]: r for r in evaluation.rows}
    assert set(by_id) == {PERFECT, OFFSET}

    perfect = by_id[PERFECT]
    assert perfect["scenario"] == "face"
    for key in (
        "foreground_sad",
        "foreground_mse",
        "foreground_sad_trimap",
        "depth_rmse",
        "depth_absrel",
    ):
        assert perfect[key] == pytest.approx(0.0, abs=1e-4), key
    assert perfect["normal_mean_deg"] == pytest.approx(0.0, abs=0.05)
    assert perfect["normal_within_11_25"] == 1.0

    offset = by_id[OFFSET]
    assert offset["scenario"] == scenario_of(OFFSET) == "full_body"
    extra = 40 * 40
    assert offset["foreground_sad"] == pytest.approx(extra / 1000, abs=1e-4)
    assert offset["foreground_mse"] == pytest.approx(extra / (HEIGHT * WIDTH), rel=1e-4)
    truth = _truth(True)
    mask = truth["alpha"] > 127
    assert offset["depth_rmse"] == pytest.approx(DEPTH_ERROR, abs=1e-3)
    expected_absrel = float(np.mean(DEPTH_ERROR / truth["depth"][mask].astype(np.float64)))
    assert offset["depth_absrel"] == pytest.approx(expected_absrel, rel=1e-3)
    assert offset["normal_mean_deg"] == pytest.approx(ANGLE, abs=0.01)
    assert offset["normal_median_deg"] == pytest.approx(ANGLE, abs=0.05)
    assert (offset["normal_within_11_25"], offset["normal_within_22_5"]) == (0.0, 1.0)

    summary = {r["scenario"]: r for r in evaluation.summary_rows()}
    assert summary["face"]["depth_rmse"] == pytest.approx(0.0, abs=1e-4)
    assert summary["full_body"]["depth_rmse"] == pytest.approx(DEPTH_ERROR, abs=1e-3)
    overall = summary["all"]
    assert overall["samples"] == 2
    assert overall["foreground_sad"] == pytest.approx(
        extra / 2000, abs=1e-4
    )  # mean of per-sample values
    n_perfect = int((_truth(False)["alpha"] > 127).sum())
    pooled = ANGLE * mask.sum() / (mask.sum() + n_perfect)  # angles pooled over pixels
    assert overall["normal_mean_deg"] == pytest.approx(pooled, abs=0.01)

    paths = report.paths
    table = pq.read_table(paths["per_sample"])
    assert table.column("sample_id").to_pylist() == [PERFECT, OFFSET]
    saved = json.loads(Path(paths["summary_json"]).read_text())
    assert saved["groups"]["full_body"]["metrics"]["depth_rmse"] == pytest.approx(
        DEPTH_ERROR, abs=1e-3
    )
    assert saved["model"]["sha256"] == evaluation.model_sha256
    assert (
        (tmp_path / "eval" / "summary.csv")
        .read_text()
        .splitlines()[0]
        .startswith("scenario,samples,")
    )


def test_query_selects_the_samples(store: str, models: dict[str, Path], tmp_path: Path) -> None:
    report = evaluate(
        EvalSettings(
            store=store,
            output=str(tmp_path / "eval"),
            model_path=str(models["analytic"]),
            query="scenario = 'face'",
        )
    )
    assert [r["sample_id"] for r in report.evaluation.rows] == [PERFECT]
    assert report.evaluation.task == "multitask"  # read from the model's outputs


def test_infer_from_store_converts_stored_rgb_to_bgr(
    store: str, models: dict[str, Path], tmp_path: Path
) -> None:
    from david_data.infer.batch import InferSettings
    from david_data.infer.outputs import decode_foreground

    settings = InferSettings(
        store=store,
        query="scenario = 'face'",
        output=str(tmp_path / "out"),
        model_path=str(models["analytic"]),
        task="multitask",
    )
    report = infer(settings)
    assert (report.ok, report.failed, report.total) == (1, 0, 1)
    fg = decode_foreground((tmp_path / "out" / "rgb_0098039.foreground.png").read_bytes())
    # the analytic foreground reads the red channel: 1 exactly on the figure, 0 elsewhere
    assert np.array_equal(fg, (_image_bgr()[..., 2] == 255).astype(np.float32))


def test_cli_evaluate_writes_tables(store: str, models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = cli(
        [
            "evaluate",
            store,
            "--model-path",
            str(models["analytic"]),
            "--task",
            "multitask",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| scenario | samples |" in proc.stdout and "| full_body | 1 |" in proc.stdout
    assert proc.stdout.count("| scenario | samples |") == 1  # the summary is printed once
    assert "Traceback" not in proc.stderr
    saved = json.loads((out / "summary.json").read_text())
    assert saved["groups"]["face"]["metrics"]["depth_rmse"] == pytest.approx(0.0, abs=1e-4)
    assert saved["groups"]["full_body"]["metrics"]["normal_mean_deg"] == pytest.approx(
        ANGLE, abs=0.01
    )


def test_evaluate_on_a_dask_cluster_gives_the_same_per_sample_metrics(
    store: str, models: dict[str, Path], tmp_path: Path, dask_cluster: str
) -> None:
    import os
    import shutil

    client = tmp_path / "client"  # the user's working directory; the workers run elsewhere
    client.mkdir()
    shutil.copy(models["analytic"], client / "model.onnx")
    common = [
        "evaluate",
        os.path.relpath(store, client),
        "--model-path",
        "model.onnx",
        "--samples-per-task",
        "1",
        "--no-progress",
    ]
    local = cli([*common, "-o", "local"], cwd=client)
    assert local.returncode == 0, local.stderr[-3000:]
    remote = cli([*common, "-o", "rel/eval", "--dask-address", dask_cluster], cwd=client)
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert f"Dask cluster {dask_cluster}" in remote.stderr
    a = pq.read_table(client / "local" / "per_sample.parquet")
    b = pq.read_table(client / "rel" / "eval" / "per_sample.parquet")
    assert a.num_rows == 2 and a.schema == b.schema
    assert json.dumps(a.to_pylist()) == json.dumps(b.to_pylist())  # NaN included
    groups = [
        json.dumps(json.loads((d / "summary.json").read_text())["groups"])
        for d in (client / "local", client / "rel" / "eval")
    ]
    assert groups[0] == groups[1]


def test_cli_evaluate_with_a_truncated_model_is_one_error(
    store: str, models: dict[str, Path], tmp_path: Path
) -> None:
    good = models["analytic"].read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good[: len(good) // 2])
    out = tmp_path / "eval"
    proc = cli(["evaluate", store, "--model-path", str(bad), "--task", "multitask", "-o", str(out)])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], lines
    assert not out.exists()


def test_the_report_is_a_job_report(store: str, models: dict[str, Path], tmp_path: Path) -> None:
    from david_data.engine import JobReport, exit_code

    report = evaluate(
        EvalSettings(store=store, output=str(tmp_path / "e"), model_path=str(models["analytic"]))
    )
    assert isinstance(report, JobReport) and exit_code(report) == 0
    assert "| scenario | samples |" in report.markdown() and report.markdown() != report.summary()


def test_cli_evaluate_with_prefect_runs_the_flow(
    store: str, models: dict[str, Path], tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    out = tmp_path / "eval"
    proc = cli(
        ["evaluate", store, "--model-path", str(models["analytic"]), "-o", str(out), "--prefect",
         "--no-progress"],
        env={"PREFECT_API_URL": prefect_env["PREFECT_API_URL"]},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Finished in state Completed" in proc.stderr  # it ran as a flow run
    assert proc.stdout.count("| scenario | samples |") == 1
    assert json.loads((out / "summary.json").read_text())["samples"] == 2
