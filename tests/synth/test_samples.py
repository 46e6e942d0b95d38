"""Synthetic samples have the real layout and self-consistent content."""

from __future__ import annotations

from importlib import resources

import cv2
import numpy as np
import pytest

from david_data.errors import ConfigError
from david_data.facts import DEPTH_BACKGROUND, HEIGHT, WIDTH, scenario_of
from david_data.synth import encode_sample, sample_arrays

# The first and last id of every scenario.
EDGE_IDS = (0, 98_039, 98_040, 198_015, 198_016, 298_007)


def _assets(scenario: str) -> list[np.ndarray]:
    folder = resources.files("david_data.synth").joinpath("assets")
    images = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(scenario + "_") and entry.name.endswith(".png"):
            bgr = cv2.imdecode(np.frombuffer(entry.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images


@pytest.mark.parametrize("sample_id", EDGE_IDS)
def test_arrays_have_the_real_layout(sample_id):
    a = sample_arrays(sample_id)
    assert set(a) == {"rgb", "alpha", "depth", "normal", "intrinsics"}
    assert a["rgb"].shape == (HEIGHT, WIDTH, 3) and a["rgb"].dtype == np.uint8
    assert a["alpha"].shape == (HEIGHT, WIDTH) and a["alpha"].dtype == np.uint8
    assert a["depth"].shape == (HEIGHT, WIDTH) and a["depth"].dtype == np.float32
    assert a["normal"].shape == (HEIGHT, WIDTH, 3) and a["normal"].dtype == np.float32
    assert a["intrinsics"].shape == (3, 3) and a["intrinsics"].dtype == np.float64

    fg = a["alpha"] > 0
    assert 0.03 < fg.mean() < 0.9, "the person covers a plausible share of the frame"
    # Background depth is exactly 65504 exactly where alpha is 0.
    np.testing.assert_array_equal(a["depth"] == DEPTH_BACKGROUND, ~fg)
    assert a["depth"][fg].min() > 40.0 and a["depth"][fg].max() < 400.0
    # Unit normals on the foreground, zeros behind, and facing the camera (Z > 0).
    lengths = np.linalg.norm(a["normal"][fg], axis=-1)
    assert np.abs(lengths - 1.0).max() < 1e-5
    assert not a["normal"][~fg].any()
    assert np.median(a["normal"][fg][:, 2]) > 0.5
    # Soft edges: values strictly between 0 and 255 sit on the silhouette's rim.
    alpha = a["alpha"]
    assert alpha.max() == 255 and ((alpha > 0) & (alpha < 255)).sum() > 100

    k = a["intrinsics"]
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    assert fx == fy and 400 <= fx <= 900
    assert abs(cx - WIDTH / 2) <= 17 and abs(cy - HEIGHT / 2) <= 17
    assert k[2, 2] == 1.0 and k[2, 0] == 0 and k[2, 1] == 0 and k[0, 1] == 0 and k[1, 0] == 0


@pytest.mark.parametrize("sample_id", [5, 100_007, 250_011])
def test_rgb_is_a_real_crop_of_the_scenarios_renders(sample_id):
    """The centre of every sample is a window of one of its scenario's real renders,
    possibly mirrored and shifted by up to 16 px."""
    rgb = sample_arrays(sample_id)["rgb"]
    patch = rgb[HEIGHT // 2 - 24 : HEIGHT // 2 + 24, WIDTH // 2 - 24 : WIDTH // 2 + 24]
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 5000, "real renders have many colours"
    found = False
    for tile in _assets(scenario_of(sample_id)):
        for image in (tile, np.ascontiguousarray(tile[:, ::-1])):
            result = cv2.matchTemplate(image, patch, cv2.TM_SQDIFF)
            _, _, (x, y), _ = cv2.minMaxLoc(result)
            found |= np.array_equal(image[y : y + 48, x : x + 48], patch)
    assert found


def test_depth_and_normals_describe_the_same_surface():
    """Normals from back-projected depth agree with the stored ones inside the silhouette."""
    for sample_id in (3, 150_000, 260_000):
        a = sample_arrays(sample_id)
        k = a["intrinsics"]
        z = a["depth"].astype(np.float64)
        rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
        points = np.stack(
            [(cols - k[0, 2]) * z / k[0, 0], (rows - k[1, 2]) * z / k[1, 1], z], axis=-1
        )
        du = np.gradient(points, axis=1)
        dv = np.gradient(points, axis=0)
        n = np.cross(dv, du)  # camera axes: x right, y down, z forward; outward faces -z
        n = np.stack([n[..., 0], -n[..., 1], -n[..., 2]], axis=-1)
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        # Away from the silhouette and from depth steps between body parts.
        inner = cv2.erode((a["alpha"] == 255).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        step = np.abs(cv2.Laplacian(z, cv2.CV_64F)) < 0.5 * z / k[0, 0] * 4
        mask = inner & step
        assert mask.sum() > 5000
        cos = np.clip((n[mask] * a["normal"][mask]).sum(-1), -1, 1)
        angles = np.degrees(np.arccos(cos))
        assert np.median(angles) < 2.0, np.median(angles)
        assert np.percentile(angles, 90) < 5.0


def test_depth_varies_smoothly_on_the_surface():
    a = sample_arrays(42)
    inner = cv2.erode((a["alpha"] == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    steps = np.abs(np.diff(a["depth"], axis=1))[inner[:, 1:] & inner[:, :-1]]
    assert np.median(steps) < 0.5 and np.unique(a["depth"][inner]).size > 1000


def test_same_id_gives_identical_arrays_and_bytes_and_ids_differ():
    first, again = sample_arrays(1234), sample_arrays(1234)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert encode_sample(1234) == encode_sample(1234)
    others = [sample_arrays(i)["rgb"] for i in (1235, 1236, 1237)]
    assert all(not np.array_equal(first["rgb"], o) for o in others)
    depths = {float(sample_arrays(i)["depth"].min()) for i in range(1234, 1238)}
    assert len(depths) == 4, "each sample gets its own distance"


@pytest.mark.parametrize("bad", [-1, 298_008, 10**9])
def test_out_of_range_ids_are_rejected(bad):
    with pytest.raises(ConfigError, match=str(bad)):
        sample_arrays(bad)
