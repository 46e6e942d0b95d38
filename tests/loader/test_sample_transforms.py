"""SynthHuman transforms against hand-computed cases and a geometric reconstruction."""

from __future__ import annotations

import pickle
from functools import partial

import numpy as np
import pytest

from david_data import transforms as T
from david_data.errors import ConfigError
from david_data.synth import sample_arrays


def K(fx, fy, cx, cy):
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def back_project(depth_m, valid, k):
    """Camera-frame points (OpenCV axes) of the valid pixels, as an (H, W, 3) array."""
    h, w = depth_m.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth_m.astype(np.float64)
    x = (u - k[0, 2]) * z / k[0, 0]
    y = (v - k[1, 2]) * z / k[1, 1]
    return np.where(valid[..., None], np.stack([x, y, z], axis=-1), np.nan)


CAMERA = K(10.0, 12.0, 2.7, 3.4)


def plane_sample(h=6, w=8, a=0.3, b=-0.2, c=2.0, k=CAMERA):
    """Depth (cm) of the plane Z = a X + b Y + c seen through ``k``, its normals in the data
    convention (X right, Y up, Z toward the camera), and a background column."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    xn, yn = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]
    z = c / (1 - a * xn - b * yn)  # ray (xn, yn, 1) t meets the plane at t = z
    n_cam = np.array([a, b, -1.0]) / np.linalg.norm([a, b, -1.0])  # OpenCV axes, toward the camera
    normal = np.broadcast_to(n_cam * [1, -1, -1], (h, w, 3)).astype(np.float32).copy()
    depth = (z * 100).astype(np.float32)
    depth[:, -1] = 65504.0
    normal[:, -1] = 0
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, -1] = 0
    rgb = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    return {"rgb": rgb, "alpha": alpha, "depth": depth, "normal": normal, "intrinsics": k}


def normals_from_points(points):
    """Per-pixel normals of a back-projected surface (cross product of the grid's
    neighbour differences), in the data convention."""
    du = points[:, 1:, :][:-1] - points[:, :-1, :][:-1]
    dv = points[1:, :, :][:, :-1] - points[:-1, :, :][:, :-1]
    n = np.cross(dv, du)  # points toward the camera for a surface seen from the front
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return n * [1, -1, -1]


# -- depth -------------------------------------------------------------------------------
def test_depth_in_metres_with_its_validity_mask():
    depth = np.array([[250.0, 65504.0], [np.nan, np.inf]], dtype=np.float32)
    metres, valid = T.depth_to_metres(depth)
    assert valid.tolist() == [[True, False], [False, False]]
    assert metres.tolist() == [[2.5, 0.0], [0.0, 0.0]]
    assert metres.dtype == np.float32
    half = np.array([100.0, 65504.0, 0.0], dtype=np.float16)  # float16 stores, background, zero
    assert T.depth_to_metres(half)[1].tolist() == [True, False, False]


def test_disparity_is_inverse_metres_and_zero_where_invalid():
    sample = T.add_disparity(
        T.metric_depth({"depth": np.array([[200.0, 65504.0, 50.0]], np.float32)})
    )
    assert sample["disparity"].tolist() == [[0.5, 0.0, 2.0]]
    with pytest.raises(ConfigError, match="metric_depth"):
        T.add_disparity({"depth": np.ones((2, 2), np.float32)})


# -- intrinsics under resize and crop (hand-computed) -------------------------------------
def test_resize_scales_intrinsics_with_the_pixel_centre_convention():
    sample = {"rgb": np.zeros((512, 384, 3), np.uint8), "intrinsics": K(500.0, 510.0, 191.5, 255.5)}
    out = T.resize(sample, 256, 192)
    assert out["rgb"].shape == (256, 192, 3)
    # sx = sy = 0.5: fx' = 250, fy' = 255, cx' = 0.5 * (191.5 + 0.5) - 0.5 = 95.5, cy' = 127.5
    assert np.allclose(out["intrinsics"], K(250.0, 255.0, 95.5, 127.5))
    up = T.resize({"alpha": np.zeros((4, 4), np.uint8), "intrinsics": K(2.0, 2.0, 1.5, 1.0)}, 8, 12)
    # sx = 3, sy = 2: cx' = 3 * 2.0 - 0.5 = 5.5, cy' = 2 * 1.5 - 0.5 = 2.5
    assert np.allclose(up["intrinsics"], K(6.0, 4.0, 5.5, 2.5))
    assert sample["intrinsics"][0, 0] == 500.0  # the input is left alone


def test_resize_keeps_projections_consistent():
    """A point's pixel in the resized image is where cv2.resize puts that image content."""
    sample = plane_sample(h=12, w=16)
    out = T.resize(sample, 6, 8)
    point = np.array([0.1, -0.05, 2.0])
    uv = (sample["intrinsics"] @ point)[:2] / point[2]
    uv2 = (out["intrinsics"] @ point)[:2] / point[2]
    assert np.allclose(uv2, (uv + 0.5) * 0.5 - 0.5)


def test_resize_interpolation_per_field():
    depth = np.array([[100.0, 65504.0], [100.0, 65504.0]], np.float32)
    normal = np.zeros((2, 2, 3), np.float32)
    normal[:, 0] = [0, 0, 1]
    normal[:, 1] = [1, 0, 0]
    out = T.resize({"depth": depth, "normal": normal, "valid": depth < 1000}, 4, 4)
    # depth and masks: nearest neighbour, never a mix of surface and background
    assert out["depth"].tolist() == [[100.0, 100.0, 65504.0, 65504.0]] * 4
    assert out["valid"].tolist() == [[True, True, False, False]] * 4
    # normals: bilinear, then renormalised to unit length
    lengths = np.linalg.norm(out["normal"], axis=-1)
    assert np.allclose(lengths, 1.0, atol=1e-6)
    assert np.allclose(out["normal"][0, 1], [0.25, 0, 0.75] / np.linalg.norm([0.25, 0, 0.75]))


def test_renormalize_leaves_background_zero():
    n = np.array([[[0, 0, 2.0], [0, 0, 0]]], np.float32)
    assert T.renormalize_normals(n).tolist() == [[[0, 0, 1.0], [0, 0, 0]]]


def test_crop_moves_the_principal_point():
    sample = plane_sample()
    out = T.crop(sample, 1, 2, 4, 5)
    assert np.allclose(out["intrinsics"], K(10.0, 12.0, 0.7, 2.4))
    assert np.array_equal(out["rgb"], sample["rgb"][1:5, 2:7])
    # the same camera points land on the same content: back-projection is unchanged
    metres, valid = T.depth_to_metres(sample["depth"])
    cropped = T.metric_depth(out)
    assert np.allclose(
        back_project(cropped["depth"], cropped["valid"], out["intrinsics"]),
        back_project(metres, valid, sample["intrinsics"])[1:5, 2:7],
        equal_nan=True,
    )
    with pytest.raises(ConfigError, match="not inside"):
        T.crop(sample, 3, 0, 4, 8)


# -- flip: acceptance 4 -------------------------------------------------------------------
def test_flip_mirrors_the_back_projected_points_and_normals():
    sample = plane_sample()
    flipped = T.metric_depth(T.hflip(sample))
    orig = T.metric_depth(sample)
    assert flipped["intrinsics"][0, 2] == pytest.approx(8 - 1 - 2.7)  # cx' = W - 1 - cx
    p = back_project(orig["depth"], orig["valid"], orig["intrinsics"])
    q = back_project(flipped["depth"], flipped["valid"], flipped["intrinsics"])
    mirrored = p[:, ::-1] * [-1, 1, 1]  # the mirror of each point, at its flipped pixel
    assert np.allclose(q, mirrored, equal_nan=True)
    # The flipped points lie on the mirrored plane Z = -a X + b Y + c ...
    good = flipped["valid"]
    x, y, z = q[good].T
    assert np.allclose(z, -0.3 * x + -0.2 * y + 2.0)
    # ... whose normal is the flipped normal field, and which the flipped normals match.
    assert not good[:, 0].any()  # the background column moved to the left edge
    from_points = normals_from_points(q[:, 1:])
    assert np.allclose(from_points, flipped["normal"][:-1, 1:-1], atol=1e-5)
    n_mirrored = np.array([-0.3, -0.2, -1.0]) / np.linalg.norm([-0.3, -0.2, -1.0]) * [1, -1, -1]
    assert np.allclose(flipped["normal"][good], n_mirrored, atol=1e-6)
    assert np.allclose(flipped["normal"][good], sample["normal"][:, ::-1][good] * [-1, 1, 1])


def test_flip_with_the_other_centre_convention_would_be_off_by_one_pixel():
    sample = plane_sample()
    flipped = T.metric_depth(T.hflip(sample))
    wrong = flipped["intrinsics"].copy()
    wrong[0, 2] = 8 - 2.7  # cx' = W - cx
    p = back_project(*T.depth_to_metres(sample["depth"]), sample["intrinsics"])
    q = back_project(flipped["depth"], flipped["valid"], wrong)
    assert not np.allclose(q, p[:, ::-1] * [-1, 1, 1], equal_nan=True)


def test_flip_of_a_synthetic_render_mirrors_its_points():
    sample = sample_arrays(98_050)
    flipped = T.metric_depth(T.hflip(sample))
    orig = T.metric_depth(sample)
    p = back_project(orig["depth"], orig["valid"], orig["intrinsics"])
    q = back_project(flipped["depth"], flipped["valid"], flipped["intrinsics"])
    assert np.allclose(q, p[:, ::-1] * [-1, 1, 1], equal_nan=True, atol=1e-6)
    assert np.array_equal(flipped["normal"][..., 1:], sample["normal"][:, ::-1, 1:])
    assert np.array_equal(flipped["normal"][..., 0], -sample["normal"][:, ::-1, 0])
    assert np.array_equal(T.hflip(T.hflip(sample))["intrinsics"], sample["intrinsics"])


# -- foreground crop ------------------------------------------------------------------------
def test_foreground_box_by_hand():
    alpha = np.zeros((20, 30), np.uint8)
    alpha[5:10, 10:14] = 255  # rows 5..9, columns 10..13: 5 x 4 pixels
    alpha[2, 2] = 100  # below the threshold
    assert T.foreground_box(alpha, margin=0) == (5, 10, 5, 4)
    # margin 0.2: 1 row and 0.8 column on each side -> rows 4..10, columns 9..14
    assert T.foreground_box(alpha, margin=0.2) == (4, 9, 7, 6)
    # square: the 4-wide box grows to 5 wide about its centre (11.5) -> 9.5 ... 14.5 edges
    assert T.foreground_box(alpha, margin=0, aspect=1.0) == (5, 9, 5, 6)
    assert T.foreground_box(alpha, margin=10) == (0, 0, 20, 30)  # clipped to the image
    assert T.foreground_box(np.zeros((4, 4), np.uint8)) is None


def test_foreground_crop_updates_intrinsics():
    sample = plane_sample(h=12, w=16)
    sample["alpha"][:] = 0
    sample["alpha"][3:8, 4:9] = 255
    out = T.foreground_crop(sample, margin=0)
    assert out["rgb"].shape == (5, 5, 3)
    assert np.allclose(out["intrinsics"], K(10.0, 12.0, 2.7 - 4, 3.4 - 3))
    empty = {**sample, "alpha": np.zeros((12, 16), np.uint8)}
    assert T.foreground_crop(empty)["rgb"].shape == (12, 16, 3)


def test_compose_pickles_and_chains():
    chain = T.Compose(
        T.metric_depth, partial(T.resize, height=4, width=3), T.hflip, T.add_disparity
    )
    chain = pickle.loads(pickle.dumps(chain))
    out = chain(plane_sample())
    assert out["depth"].shape == out["disparity"].shape == out["valid"].shape == (4, 3)
    assert out["depth"].dtype == np.float32 and out["rgb"].flags.writeable
