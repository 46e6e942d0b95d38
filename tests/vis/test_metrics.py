"""The model cards' metrics on hand-computed cases."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from david_data.infer import metrics as M


def tilt(normals: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate each unit normal by ``degrees`` towards a direction perpendicular to it."""
    side = np.cross(normals, np.array([0.3, -0.5, 0.8]))
    side /= np.linalg.norm(side, axis=-1, keepdims=True)
    t = math.radians(degrees)
    return normals * math.cos(t) + side * math.sin(t)


def unit_normals(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Random unit normals facing the camera (z > 0.2), as a real surface would."""
    rng = np.random.default_rng(seed)
    n = rng.normal(size=(h, w, 3))
    n[..., 2] = np.abs(n[..., 2]) + 0.2
    return n / np.linalg.norm(n, axis=2, keepdims=True)


# --- trimap ------------------------------------------------------------------------------


def test_trimap_band_zero_marks_exactly_the_soft_pixels() -> None:
    alpha = np.zeros((8, 8), np.uint8)
    alpha[2:6, 2:6] = 255
    alpha[2, 2:6] = 90  # a soft top edge
    trimap = M.make_trimap(alpha, band_px=0)
    assert set(np.unique(trimap)) == {0, 128, 255}
    np.testing.assert_array_equal(trimap == 128, (alpha > 0) & (alpha < 255))
    np.testing.assert_array_equal(trimap == 255, alpha == 255)
    np.testing.assert_array_equal(trimap == 0, alpha == 0)


def test_trimap_band_reaches_band_px_either_side_of_a_hard_edge() -> None:
    alpha = np.zeros((40, 40), np.uint8)
    alpha[:, 20:] = 255  # a vertical hard edge between columns 19 and 20
    trimap = M.make_trimap(alpha, band_px=3)
    row = trimap[20]
    # dilation of the foreground by 3 reaches column 17; erosion by 3 keeps column 23 on.
    assert list(row[15:26]) == [0, 0, 128, 128, 128, 128, 128, 128, 255, 255, 255]
    # every soft pixel is unknown whatever the band
    alpha[10, 5] = 1
    assert M.make_trimap(alpha, band_px=3)[10, 5] == 128


def test_trimap_of_all_foreground_or_all_background_has_no_band() -> None:
    assert (M.make_trimap(np.full((16, 16), 255, np.uint8)) == 255).all()
    assert (M.make_trimap(np.zeros((16, 16), np.uint8)) == 0).all()
    with pytest.raises(ValueError, match="uint8"):
        M.make_trimap(np.zeros((4, 4), np.float32))


# --- soft foreground ---------------------------------------------------------------------


def test_foreground_perfect_prediction_scores_zero() -> None:
    gt = np.linspace(0, 1, 100 * 80).reshape(100, 80)
    out = M.foreground_metrics(gt.copy(), gt)
    assert out == {"sad": 0.0, "mse": 0.0, "sad_trimap": 0.0}


def test_foreground_sad_mse_and_trimap_sad_of_a_known_difference() -> None:
    gt = np.zeros((10, 10))
    pred = gt.copy()
    pred[:5] = 0.1  # 50 pixels off by 0.1, the rest exact
    trimap = np.zeros((10, 10), np.uint8)
    trimap[:2] = 128  # 20 of those pixels in the unknown band
    trimap[8:] = 128  # 20 exact pixels in the band add nothing
    out = M.foreground_metrics(pred, gt, trimap)
    assert out["sad"] == pytest.approx(50 * 0.1 / 1000)
    assert out["mse"] == pytest.approx(50 * 0.01 / 100)
    assert out["sad_trimap"] == pytest.approx(20 * 0.1 / 1000)


def test_foreground_constant_offset_and_uint8_ground_truth() -> None:
    alpha = np.zeros((20, 30), np.uint8)
    alpha[5:15, 10:20] = 255
    pred = alpha / 255.0 * 0.75 + 0.25 * (alpha == 0)  # off by 0.25 everywhere
    out = M.foreground_metrics(pred, alpha)  # uint8 gt: / 255; trimap made from it
    assert out["sad"] == pytest.approx(600 * 0.25 / 1000)
    assert out["mse"] == pytest.approx(0.0625)
    band = (M.make_trimap(alpha) == 128).sum()
    assert out["sad_trimap"] == pytest.approx(band * 0.25 / 1000)


def test_foreground_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="resize"):
        M.foreground_metrics(np.zeros((4, 4)), np.zeros((4, 5)))


# --- depth -------------------------------------------------------------------------------


def test_depth_scaled_and_shifted_inverse_prediction_aligns_to_zero_error() -> None:
    gt = np.linspace(80.0, 240.0, 64 * 48).reshape(64, 48)
    pred = -2.5 * gt + 700.0  # larger = nearer, arbitrary units
    mask = np.ones_like(gt, bool)
    scale, shift = M.align_scale_shift(pred, gt, mask)
    assert scale == pytest.approx(-0.4)
    assert shift == pytest.approx(280.0)
    out = M.depth_metrics(pred, gt, mask)
    assert out["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert out["absrel"] == pytest.approx(0.0, abs=1e-12)


def test_depth_known_residual_survives_alignment() -> None:
    # gt = pred + e with e orthogonal to 1 and to pred: the least-squares fit of pred to
    # gt is scale 1, shift 0, and the error left is exactly e: RMSE 1 cm, AbsRel mean(1/gt).
    pred = np.array([[100.0, 100.0, 200.0, 200.0]])
    gt = pred + np.array([[1.0, -1.0, 1.0, -1.0]])
    mask = np.ones_like(gt, bool)
    scale, shift = M.align_scale_shift(pred, gt, mask)
    assert scale == pytest.approx(1.0)
    assert shift == pytest.approx(0.0, abs=1e-9)
    out = M.depth_metrics(pred, gt, mask)
    assert out["rmse"] == pytest.approx(1.0)
    assert out["absrel"] == pytest.approx((1 / 101 + 1 / 99 + 1 / 201 + 1 / 199) / 4)


def test_depth_constant_prediction_gets_mean_and_rmse_is_std() -> None:
    gt = np.array([[100.0, 120.0, 140.0, 160.0]])
    scale, shift = M.align_scale_shift(np.full_like(gt, 3.0), gt, np.ones_like(gt, bool))
    assert (scale, shift) == (0.0, pytest.approx(130.0))
    out = M.depth_metrics(np.full_like(gt, 3.0), gt)
    assert out["rmse"] == pytest.approx(float(np.std(gt)))


def test_depth_ignores_pixels_outside_mask_background_and_nan() -> None:
    gt = np.linspace(100.0, 200.0, 64).reshape(8, 8)
    pred = 1000.0 / gt  # inverse depth: alignment in cm leaves a known, non-zero error
    ref = M.depth_metrics(pred[:4], gt[:4])
    assert ref["rmse"] > 0
    mask = np.zeros((8, 8), bool)
    mask[:6] = True
    pred2, gt2 = pred.copy(), gt.copy()
    pred2[6:] = 1e6  # garbage outside the mask
    gt2[4] = 65504.0  # ground-truth background inside the mask
    pred2[5] = np.nan  # a broken prediction inside the mask
    assert M.depth_metrics(pred2, gt2, mask) == pytest.approx(ref)
    empty = M.depth_metrics(pred, gt, np.zeros((8, 8), bool))
    assert math.isnan(empty["rmse"]) and math.isnan(empty["absrel"])
    assert all(math.isnan(v) for v in M.align_scale_shift(pred, gt, np.zeros((8, 8), bool)))


# --- normals -----------------------------------------------------------------------------


def test_normals_perfect_prediction() -> None:
    gt = unit_normals(32, 24)
    out = M.normal_metrics(gt * 3.0, gt)  # renormalised: length does not matter
    assert out["mean_deg"] == pytest.approx(0.0, abs=1e-6)
    assert out["median_deg"] == pytest.approx(0.0, abs=1e-6)
    assert out["within_11_25"] == out["within_22_5"] == out["within_30"] == 1.0


def test_normals_rotated_by_10_degrees() -> None:
    gt = unit_normals(32, 24, seed=1)
    pred = tilt(gt, 10.0)
    out = M.normal_metrics(pred, gt, np.ones((32, 24), bool))
    assert out["mean_deg"] == pytest.approx(10.0, abs=1e-9)
    assert out["median_deg"] == pytest.approx(10.0, abs=1e-9)
    assert out["within_11_25"] == 1.0
    assert out["within_22_5"] == 1.0
    assert out["within_30"] == 1.0


def test_normals_shares_and_mask() -> None:
    gt = unit_normals(10, 10, seed=2)
    pred = gt.copy()
    pred[:5] = tilt(gt[:5], 25.0)  # half at 25 degrees
    out = M.normal_metrics(pred, gt)
    assert out["mean_deg"] == pytest.approx(12.5)
    assert out["within_11_25"] == 0.5
    assert out["within_22_5"] == 0.5
    assert out["within_30"] == 1.0
    # masked, zero-length and NaN pixels are left out
    pred[5, 0] = 0.0
    pred[5, 1] = np.nan
    mask = np.ones((10, 10), bool)
    mask[:5] = False
    assert M.normal_metrics(pred, gt, mask)["mean_deg"] == pytest.approx(0.0, abs=1e-6)
    assert len(M.angular_errors(pred, gt, mask)) == 48
    empty = M.normal_metrics(pred, gt, np.zeros((10, 10), bool))
    assert all(math.isnan(v) for v in empty.values())


# --- one sample and aggregation ----------------------------------------------------------


def synthetic_truth(seed: int) -> dict[str, np.ndarray]:
    alpha = np.zeros((48, 32), np.uint8)
    alpha[8:40, 6:26] = 255
    alpha[8, 6:26] = 100
    depth = np.full((48, 32), 65504.0, np.float32)
    depth[alpha > 0] = 100.0 + seed + np.arange((alpha > 0).sum()) % 17
    return {"alpha": alpha, "depth": depth, "normal": unit_normals(48, 32, seed)}


def test_evaluate_sample_perfect_outputs_score_zero() -> None:
    truth = synthetic_truth(0)
    outputs = {
        "foreground": truth["alpha"] / 255.0,
        "depth": 3.0 - 0.01 * truth["depth"],  # larger = nearer, affine in depth
        "normal": truth["normal"],
    }
    result = M.evaluate_sample(outputs, scenario="face", sample_id=7, **truth)
    assert result.values["foreground_sad"] == 0.0
    assert result.values["depth_rmse"] == pytest.approx(0.0, abs=1e-4)  # float32 input
    assert result.values["normal_mean_deg"] == pytest.approx(0.0, abs=1e-6)
    assert result.values["normal_within_11_25"] == 1.0
    row = result.row()
    assert row["sample_id"] == 7 and row["scenario"] == "face"
    assert list(row)[2:] == list(M.METRIC_NAMES)


def sample(scenario: str, sad: float, angles: np.ndarray | None = None) -> M.SampleMetrics:
    values = {"foreground_sad": sad}
    hist = None
    if angles is not None:
        values["normal_mean_deg"] = float(angles.mean())
        hist = M._histogram(angles)
    return M.SampleMetrics(scenario=scenario, values=values, angle_histogram=hist)


def test_accumulator_means_per_image_and_pools_normal_pixels() -> None:
    acc = M.Accumulator()
    acc.add(sample("face", 1.0, np.full(100, 10.0)))
    acc.add(sample("face", 3.0, np.full(300, 20.0)))
    acc.add(sample("upper_body", 8.0))
    acc.add(sample("face", math.nan))  # e.g. an empty mask: counted as a sample, no value
    rows = {r["scenario"]: r for r in acc.rows()}
    assert [r["scenario"] for r in acc.rows()] == ["face", "upper_body", "all"]
    assert rows["face"]["samples"] == 3
    assert rows["face"]["foreground_sad"] == pytest.approx(2.0)
    assert rows["all"]["foreground_sad"] == pytest.approx(4.0)
    # pooled over 400 pixels, not the mean of the two images' means (15)
    assert rows["face"]["normal_mean_deg"] == pytest.approx(17.5)
    assert rows["face"]["normal_median_deg"] == pytest.approx(20.0, abs=0.05)
    assert rows["face"]["normal_within_11_25"] == pytest.approx(0.25)
    assert rows["face"]["normal_within_22_5"] == pytest.approx(1.0)
    assert rows["upper_body"]["normal_mean_deg"] is None
    assert rows["upper_body"]["depth_rmse"] is None
    data = json.loads(json.dumps(acc.to_dict(), allow_nan=False))
    assert data["groups"]["face"]["counts"] == {"foreground_sad": 2, "normal_pixels": 400}
    assert data["groups"]["all"]["metrics"]["foreground_sad"] == pytest.approx(4.0)


def test_accumulator_merge_equals_adding_everything() -> None:
    samples = [sample("face", i, np.full(10 * (i + 1), 5.0 * i)) for i in range(4)]
    samples.append(sample("full_body", 9.0, np.linspace(0, 40, 50)))
    whole = M.Accumulator()
    whole.extend(samples)
    a, b = M.Accumulator(), M.Accumulator()
    a.extend(samples[:2])
    b.extend(samples[2:])
    a.merge(pickle.loads(pickle.dumps(b)))
    assert len(a) == len(whole) == 5
    for merged, direct in zip(a.rows(), whole.rows(), strict=True):
        assert merged.keys() == direct.keys()
        for key, value in direct.items():
            if isinstance(value, float):
                assert merged[key] == pytest.approx(value)
            else:
                assert merged[key] == value
