"""Pictures: shapes, flat masked backgrounds, coloured foregrounds, readable labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from david_data import vis

TILES = Path(__file__).resolve().parents[2] / "david_data" / "synth" / "assets"
H, W = 512, 384


def luminance(bgr: np.ndarray) -> np.ndarray:
    return bgr.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    """A real render (shipped in the package), with a synthetic person."""
    rgb = cv2.imread(str(TILES / "full_body_0.png"))[:H, :W, ::-1].copy()
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r = np.hypot((xx - 192) / 110, (yy - 256) / 200)
    alpha = np.clip((1.2 - r) * 5, 0, 1)
    alpha = np.round(alpha * 255).astype(np.uint8)
    depth = np.where(alpha > 0, 120.0 + 30.0 * r, 65504.0).astype(np.float16)
    normal = np.dstack([(xx - 192) / 300, (256 - yy) / 400, np.ones_like(xx)])
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    return {"rgb": rgb, "alpha": alpha, "depth": depth, "normal": normal.astype(np.float32)}


# --- colouring ---------------------------------------------------------------------------


def test_colorize_depth_flat_background_coloured_foreground_near_is_bright() -> None:
    depth = np.tile(np.linspace(100.0, 300.0, 64, dtype=np.float32), (32, 1))
    mask = np.zeros(depth.shape, bool)
    mask[8:24, 8:56] = True
    out = vis.colorize_depth(depth, mask)
    assert out.shape == (32, 64, 3) and out.dtype == np.uint8
    assert (out[~mask] == vis.BACKGROUND).all()
    assert not (out[mask] == vis.BACKGROUND).all(axis=1).any()
    assert len(np.unique(out[mask], axis=0)) > 30
    row = luminance(out[16, 8:56])
    assert row[0] > row[-1] + 100  # 100 cm (near) is much brighter than 300 cm
    inverse = vis.colorize_depth(1.0 / depth, mask, near_is_larger=True)
    assert luminance(inverse[16, 8:9])[0] > luminance(inverse[16, 55:56])[0] + 100


def test_colorize_depth_is_robust_and_graceful() -> None:
    depth = np.tile(np.linspace(100.0, 200.0, 100, dtype=np.float32), (10, 1))
    depth[0, 0] = 1e4  # one stray pixel must not squash the rest into one colour
    depth[1, :5] = np.nan
    depth[2, :5] = 65504.0  # SynthHuman background counts as no surface
    out = vis.colorize_depth(depth)
    assert len(np.unique(out[5], axis=0)) > 50
    assert (out[1, :5] == vis.BACKGROUND).all() and (out[2, :5] == vis.BACKGROUND).all()
    assert (vis.colorize_depth(depth, np.zeros((10, 100), bool)) == vis.BACKGROUND).all()
    flat = vis.colorize_depth(np.full((4, 4), 7.0), None)
    assert len(np.unique(flat.reshape(-1, 3), axis=0)) == 1
    with pytest.raises(ValueError, match="mask"):
        vis.colorize_depth(depth, np.ones((3, 3), bool))


def test_colorize_normal_maps_xyz_to_rgb_and_masks() -> None:
    normal = np.zeros((4, 4, 3), np.float32)
    normal[..., 2] = 1.0  # facing the camera
    normal[0, 0] = (1.0, 0.0, 0.0)
    normal[0, 1] = np.nan
    mask = np.ones((4, 4), bool)
    mask[3] = False
    out = vis.colorize_normal(normal, mask)
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3)
    assert tuple(out[1, 1]) == (255, 128, 128)  # BGR: Z -> blue, X, Y = 0 -> mid grey
    assert tuple(out[0, 0]) == (128, 128, 255)  # X -> red
    assert (out[0, 1] == vis.BACKGROUND).all() and (out[3] == vis.BACKGROUND).all()


def test_foreground_over_composites_soft_mask() -> None:
    image = np.full((2, 3, 3), 200, np.uint8)
    fg = np.array([[1.0, 0.0, 0.5], [np.nan, 1.0, 1.0]])
    out = vis.foreground_over(fg, (0, 255, 0), image=image)
    assert tuple(out[0, 0]) == (200, 200, 200)
    assert tuple(out[0, 1]) == (0, 255, 0)
    assert tuple(out[0, 2]) == (100, 228, 100)
    assert tuple(out[1, 0]) == (0, 255, 0)  # NaN counts as background
    white = vis.foreground_over(np.array([[255, 0]], np.uint8), (10, 20, 30))
    assert white.tolist() == [[[255, 255, 255], [10, 20, 30]]]


# --- panels ------------------------------------------------------------------------------


def tile(panel: np.ndarray, k: int, header: int, width: int = W) -> np.ndarray:
    """Tile k of a one-row panel below a header of ``header`` rows (4-pixel gaps)."""
    x = k * (width + 4)
    return panel[header:, x : x + width]


def test_sample_panel_layout_and_masking(sample: dict[str, np.ndarray]) -> None:
    panel = vis.sample_panel(**sample, title=None)
    assert panel.dtype == np.uint8 and panel.shape[1] == 4 * W + 3 * 4
    header = panel.shape[0] - H
    assert 20 <= header <= 40
    rgb, depth, fg, normals = (tile(panel, k, header) for k in range(4))
    np.testing.assert_array_equal(rgb, sample["rgb"][..., ::-1])
    solid = sample["alpha"] > 127
    assert (depth[~solid] == vis.BACKGROUND).all()
    assert not (depth[solid] == vis.BACKGROUND).all(axis=1).any()
    assert (normals[~solid] == vis.BACKGROUND).all()
    assert (fg[sample["alpha"] == 0] == vis.FOREGROUND_COLOR).all()
    np.testing.assert_array_equal(fg[sample["alpha"] == 255], rgb[sample["alpha"] == 255])
    titled = vis.sample_panel(**sample, title="sample 0120000 · full_body")
    assert titled.shape[0] > panel.shape[0]
    np.testing.assert_array_equal(titled[-H:], panel[-H:])


def test_labels_change_pixels(sample: dict[str, np.ndarray]) -> None:
    image = sample["rgb"][..., ::-1]
    a = vis.grid([image, image], ["id 1 · face", "id 2 · face"], columns=2)
    b = vis.grid([image, image], ["id 1 · face", "id 298007 · upper_body"], columns=2)
    assert a.shape == b.shape
    differs = np.argwhere((a != b).any(axis=2))
    assert len(differs) > 50
    assert differs[:, 0].max() < a.shape[0] - H  # only in the header strip
    assert differs[:, 1].min() > W  # only in the second tile's header
    header = a[: a.shape[0] - H, :W]
    assert len(np.unique(header.reshape(-1, 3), axis=0)) > 2  # text drawn, not a flat strip


def test_prediction_panel_masks_with_predicted_foreground(sample: dict[str, np.ndarray]) -> None:
    image = sample["rgb"][..., ::-1]
    fg = sample["alpha"] / 255.0
    outputs = {
        "depth": 1000.0 / sample["depth"].astype(np.float32),
        "normal": sample["normal"],
        "foreground": fg,
    }
    panel = vis.prediction_panel(image, outputs, title="multitask-large · photo.jpg")
    header = panel.shape[0] - H
    assert panel.shape[1] == 4 * W + 3 * 4
    inp, depth, normals, fore = (tile(panel, k, header) for k in range(4))
    np.testing.assert_array_equal(inp, image)
    assert (depth[fg <= 0.5] == vis.BACKGROUND).all()
    assert not (depth[fg > 0.5] == vis.BACKGROUND).all(axis=1).any()
    assert (normals[fg <= 0.5] == vis.BACKGROUND).all()
    assert (fore[fg == 0] == vis.FOREGROUND_COLOR).all()
    # without a foreground, depth is coloured everywhere; with depth only: two tiles
    only = vis.prediction_panel(image, {"depth": outputs["depth"]})
    assert only.shape[1] == 2 * W + 4
    assert not (tile(only, 1, only.shape[0] - H) == vis.BACKGROUND).all(axis=2).any()
    with pytest.raises(ValueError, match="unknown output"):
        vis.prediction_panel(image, {"segmentation": fg})
    with pytest.raises(ValueError, match="differ|but the image"):
        vis.prediction_panel(image, {"foreground": fg[:10]})


def test_prediction_panel_handles_any_input_size_and_type() -> None:
    big = np.random.default_rng(1).integers(0, 65536, (3000, 4000), np.uint16)  # 16-bit grey
    panel = vis.prediction_panel(big, {"foreground": np.ones((3000, 4000), np.float32)})
    assert panel.shape[0] < 600 and panel.dtype == np.uint8  # shrunk to 512 rows
    tiny = np.zeros((40, 30, 4), np.uint8)  # BGRA
    panel = vis.prediction_panel(tiny, {"depth": np.random.rand(40, 30)}, title="a tiny image")
    assert panel.shape[0] > 192  # grown so that labels stay readable


def test_comparison_panel_stacks_individual_over_multitask(sample: dict[str, np.ndarray]) -> None:
    image = sample["rgb"][..., ::-1]
    fg = sample["alpha"] / 255.0
    individual = {"foreground": fg}
    multitask = {"foreground": fg, "normal": sample["normal"]}
    row_a = vis.prediction_panel(image, individual, title="Individual models")
    row_b = vis.prediction_panel(image, multitask, title="Multi-task model")
    out = vis.comparison_panel(image, individual, multitask)
    assert out.shape == (row_a.shape[0] + 4 + row_b.shape[0], row_b.shape[1], 3)
    np.testing.assert_array_equal(out[-row_b.shape[0] :], row_b)
    np.testing.assert_array_equal(out[: row_a.shape[0], : row_a.shape[1]], row_a)


def test_grid_layout_and_png_round_trip() -> None:
    images = [np.full((50, 40, 3), i * 40, np.uint8) for i in range(5)]
    out = vis.grid(images, [f"id {i}" for i in range(5)], columns=3)
    header = (out.shape[0] - 12) // 2 - 50
    assert out.shape == (2 * (header + 50) + 12, 3 * 40 + 2 * 12, 3)
    png = vis.encode_png(out)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), out)
    with pytest.raises(ValueError, match="labels"):
        vis.grid(images, ["one"])
