"""Acceptance 1: on images of many shapes, depths and channel layouts, every output equals
an independent implementation of the reference pre/post-processing (tests/runtime/runtime_reference.py)
within 1e-4, and the analytic model's outputs equal their closed forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import runtime_reference as ref

from david_data.infer import decode_image, load_model, postprocess, preprocess

TOL = 1e-4


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expected: np.ndarray
    """What decoding must give (BGR, original pixel type)."""


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _cases(tiles: list[np.ndarray]) -> list[Case]:
    rng = np.random.default_rng(3)
    wide = np.hstack([tiles[0], tiles[1], tiles[2]])  # 512 x 1152
    cases = [
        Case("portrait 512x384", _png(tiles[0]), tiles[0]),
        Case("landscape 301x384", _png(tiles[1][100:401]), tiles[1][100:401]),
        Case("landscape 512x768", _png(wide[:, :768]), wide[:, :768]),
        Case("square 384x384", _png(tiles[2][64:448]), tiles[2][64:448]),
        Case("square 512x512", _png(wide[:, 100:612]), wide[:, 100:612]),
        Case("odd 333x218", _png(tiles[3][11:344, 50:268]), tiles[3][11:344, 50:268]),
    ]
    tiny = cv2.resize(tiles[4], (40, 30), interpolation=cv2.INTER_AREA)
    cases.append(Case("tiny 40x30 (w x h)", _png(tiny), tiny))
    huge = cv2.resize(wide, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    huge = np.clip(huge.astype(np.int16) + rng.integers(-8, 9, huge.shape), 0, 255).astype(np.uint8)
    cases.append(Case("huge 4000x3000 (w x h)", _png(huge), huge))
    tall = cv2.resize(tiles[5], (1601, 3203), interpolation=cv2.INTER_LINEAR)
    cases.append(Case("tall 3203x1601, odd pyramid sizes", _png(tall), tall))
    grey = cv2.cvtColor(tiles[5], cv2.COLOR_BGR2GRAY)
    cases.append(Case("grey", _png(grey), np.repeat(grey[:, :, None], 3, axis=2)))
    alpha = np.tile(np.linspace(0, 255, 384, dtype=np.uint8), (512, 1))
    cases.append(Case("BGRA", _png(np.dstack([tiles[1], alpha])), tiles[1]))
    deep = tiles[2].astype(np.uint16) * 257 + rng.integers(0, 257, tiles[2].shape).astype(np.uint16)
    cases.append(Case("16-bit", _png(deep), deep))
    grey16 = deep[:300, :, 0]
    cases.append(Case("16-bit grey", _png(grey16), np.repeat(grey16[:, :, None], 3, axis=2)))
    ok, jpeg = cv2.imencode(".jpg", tiles[3], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    cases.append(Case("JPEG", jpeg.tobytes(), cv2.imdecode(jpeg, cv2.IMREAD_COLOR)))
    return cases


@pytest.fixture(scope="module")
def cases(real_tiles: list[np.ndarray]) -> list[Case]:
    return _cases(real_tiles)


def _ids() -> list[str]:
    return [
        "portrait",
        "landscape-300",
        "landscape-768",
        "square-384",
        "square-512",
        "odd",
        "tiny",
        "huge",
        "tall-odd-pyramid",
        "grey",
        "bgra",
        "16bit",
        "16bit-grey",
        "jpeg",
    ]


@pytest.mark.parametrize("index", range(len(_ids())), ids=_ids())
def test_outputs_match_independent_reference(
    index: int, cases: list[Case], models: dict[str, Path]
) -> None:
    case = cases[index]
    image = decode_image(case.data, case.name)
    assert image.dtype == case.expected.dtype
    np.testing.assert_array_equal(image, case.expected)
    h, w = image.shape[:2]

    chw, info = preprocess(image)
    ref_chw, geometry = ref.preprocess(image)
    assert chw.shape == (3, 512, 512) and chw.dtype == np.float32
    assert (info.top, info.bottom, info.left, info.right) == geometry[2:]
    assert np.abs(chw - ref_chw).max() < TOL, case.name

    # The analytic model end to end: our whole pipeline vs the reference of its closed form.
    got = load_model(models["multitask-analytic"]).predict(image)
    raw = ref.analytic_raw(ref_chw)
    expected = {
        "depth": ref.post_depth(raw["depth"], geometry),
        "normal": ref.post_normal(raw["normal"], geometry),
        "foreground": ref.post_foreground(raw["foreground"], geometry),
    }
    assert got["depth"].shape == (h, w) and got["foreground"].shape == (h, w)
    assert got["normal"].shape == (h, w, 3)
    for task in expected:
        assert got[task].dtype == np.float32
        assert np.abs(got[task] - expected[task]).max() < TOL, (case.name, task)
    assert got["foreground"].min() >= 0 and got["foreground"].max() <= 1
    # 1.5 * R - 0.25 leaves [0, 1] on these images, so clipping is exercised
    assert (
        (expected["foreground"] == 0).any() or (expected["foreground"] == 1).any() or h * w < 5000
    )

    # A random-weight model: post-processing of the same raw outputs, ours vs reference.
    model = load_model(models["multitask"])
    outs = {task: value[0] for task, value in model.run(chw[None]).items()}
    ours = postprocess(outs, info)
    assert np.abs(ours["depth"] - ref.post_depth(outs["depth"], geometry)).max() < TOL
    assert (
        np.abs(ours["foreground"] - ref.post_foreground(outs["foreground"], geometry)).max() < TOL
    )
    resized = ref.back(outs["normal"].transpose(1, 2, 0), geometry)
    firm = (
        np.linalg.norm(resized, axis=-1) > 0.05
    )  # normalising near-zero vectors amplifies rounding
    assert firm.mean() > 0.9
    diff = np.abs(ours["normal"] - ref.normalise(resized)).max(axis=-1)
    assert diff[firm].max() < TOL
    np.testing.assert_allclose(np.linalg.norm(ours["normal"][firm], axis=-1), 1.0, atol=1e-5)


def test_analytic_model_closed_form(real_tiles: list[np.ndarray], models: dict[str, Path]) -> None:
    """A 512 x 512 image needs no padding or resampling: outputs are the formulas of the pixels."""
    image = np.hstack([real_tiles[0], real_tiles[1]])[:, 100:612]
    x = image.astype(np.float64) / 255
    b, g, r = x[..., 0], x[..., 1], x[..., 2]
    got = load_model(models["multitask-analytic"]).predict(image)
    np.testing.assert_allclose(got["depth"], (b + g + r) / 3, atol=1e-6)
    normal = np.stack([b - 0.5, g - 0.5, np.ones_like(b)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    np.testing.assert_allclose(got["normal"], normal, atol=1e-6)
    np.testing.assert_allclose(got["foreground"], np.clip(1.5 * r - 0.25, 0, 1), atol=1e-6)
    for task in ("depth", "normal", "foreground"):
        single = load_model(models[f"{task}-analytic"]).predict(image)
        assert list(single) == [task]
        np.testing.assert_array_equal(single[task], got[task])


def test_float_input_is_clipped_like_the_reference(models: dict[str, Path]) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(0.5, 0.6, (200, 300, 3)).astype(np.float32)  # values outside [0, 1]
    chw, _ = preprocess(image)
    ref_chw, _ = ref.preprocess(image)
    assert chw.min() >= 0 and chw.max() <= 1
    assert np.abs(chw - ref_chw).max() < TOL


def test_preprocess_rejects_non_bgr_arrays() -> None:
    from david_data.errors import ImageDecodeError

    with pytest.raises(ImageDecodeError, match="3-channel"):
        preprocess(np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageDecodeError, match="3-channel"):
        preprocess(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ImageDecodeError, match="pixel type"):
        preprocess(np.zeros((10, 10, 3), np.int32))
