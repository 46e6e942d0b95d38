"""The pictures of a browse report: one sample's ground truth and each run's predictions
and error maps, as small WebP files named by sample, picture and size.

Colours come from :mod:`david_data.vis` (depth, normals); error maps, which ``vis`` has
no mapping for, use one fixed scale per kind (below) so that maps of different samples
and runs compare at a glance::

    img/<sid // 1000 as 3 digits>/<sid as 7 digits>.<key>.<size>.<webp | jpg>
    key:  rgb | alpha | depth | normal                     ground truth
          <run>.<sha8>.<field> | <run>.<sha8>.<field>-err  a run's prediction / error map
    size: t (thumbnail, 96 x 128, WebP: half JPEG's bytes, and a page shows hundreds)
          f (full, the sample's own 384 x 512, JPEG: WebP takes ~30 times longer to encode)

The run's model SHA-256 (first 8 hex digits) is part of the key: pictures are cached
on what they show, and a run made again with another model never reuses old ones.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from ..facts import DEPTH_BACKGROUND, FOREGROUND_THRESHOLD
from ..infer.metrics import aligned_depth, angular_errors
from ..vis import colorize_depth, colorize_normal

GROUND_TRUTH = ("rgb", "alpha", "depth", "normal")
"""Ground-truth pictures of every sample, in the order the page shows them."""
SIZES = {"t": (96, 128), "f": None}
"""Picture sizes: ``(width, height)``, or None for the sample's own size."""
FORMATS = {
    "t": (".webp", cv2.IMWRITE_WEBP_QUALITY, 80),
    "f": (".jpg", cv2.IMWRITE_JPEG_QUALITY, 88),
}
"""File format of each size: extension, OpenCV quality flag and value."""
ERROR_SCALES = {"depth": 0.2, "normal": 60.0, "foreground": 1.0}
"""Value at the top of each error map's colour scale: depth relative error (after the
metrics' scale-and-shift alignment), normal angle in degrees, |foreground - alpha|."""
ERROR_COLORMAP = cv2.COLORMAP_MAGMA
BACKGROUND = (58, 58, 58)


def image_name(sample_id: int, key: str, size: str) -> str:
    """The picture's path inside the report folder (see the module docstring)."""
    return f"img/{sample_id // 1000:03d}/{sample_id:07d}.{key}.{size}{FORMATS[size][0]}"


def run_key(name: str, model_sha256: str) -> str:
    """The picture-key prefix of a run: its name and its model's SHA-256 (8 hex digits)."""
    return f"{name}.{model_sha256[:8]}"


def ground_truth_pictures(sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BGR uint8 pictures of one sample's ground truth (keys :data:`GROUND_TRUTH`)."""
    alpha = np.asarray(sample["alpha"])
    solid = alpha > FOREGROUND_THRESHOLD
    return {
        "rgb": np.ascontiguousarray(np.asarray(sample["rgb"])[..., ::-1]),
        "alpha": cv2.cvtColor(alpha.astype(np.uint8), cv2.COLOR_GRAY2BGR),
        "depth": colorize_depth(sample["depth"], solid),
        "normal": colorize_normal(sample["normal"], solid),
    }


def prediction_pictures(
    sample: Mapping[str, np.ndarray], field: str, pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A predicted ``field`` (depth, normal or foreground) and its error map against the
    sample's ground truth, both BGR uint8. Depth and normals show over the ground-truth
    foreground (where the metrics count them)."""
    alpha = np.asarray(sample["alpha"])
    solid = alpha > FOREGROUND_THRESHOLD
    if field == "depth":
        gt = np.asarray(sample["depth"], np.float64)
        p = np.asarray(pred, np.float64)
        valid = solid & np.isfinite(gt) & (gt > 0) & (gt < DEPTH_BACKGROUND) & np.isfinite(p)
        err = np.zeros(gt.shape, np.float64)
        if valid.any():
            err[valid] = np.abs(aligned_depth(p, gt, valid)[valid] - gt[valid]) / gt[valid]
        return colorize_depth(pred, solid, near_is_larger=True), colorize_error(err, valid, field)
    if field == "normal":
        p = np.asarray(pred, np.float64)
        g = np.asarray(sample["normal"], np.float64)
        lengths_p, lengths_g = np.linalg.norm(p, axis=2), np.linalg.norm(g, axis=2)
        valid = solid & np.isfinite(lengths_p) & np.isfinite(lengths_g)
        valid &= (lengths_p > 1e-12) & (lengths_g > 1e-12)
        err = np.zeros(valid.shape, np.float64)
        err[valid] = angular_errors(p, g, valid)
        return colorize_normal(pred, solid), colorize_error(err, valid, field)
    if field == "foreground":
        p = np.clip(np.nan_to_num(np.asarray(pred, np.float32)), 0.0, 1.0)
        grey = np.round(p * 255.0).astype(np.uint8)
        err = np.abs(p - alpha.astype(np.float32) / 255.0)
        valid = np.isfinite(np.asarray(pred, np.float32))
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), colorize_error(err, valid, field)
    raise ValueError(f"unknown predicted field {field!r}; expected depth, normal or foreground")


def colorize_error(err: np.ndarray, valid: np.ndarray, field: str) -> np.ndarray:
    """An error map over ``valid`` pixels on the fixed scale of ``field``
    (:data:`ERROR_SCALES`, 0 = dark); other pixels flat grey."""
    t = np.clip(np.nan_to_num(np.asarray(err, np.float64)) / ERROR_SCALES[field], 0.0, 1.0)
    codes = np.round(t * 255.0).astype(np.uint8)
    out = cv2.applyColorMap(codes, ERROR_COLORMAP)
    out[~valid] = BACKGROUND
    return out


def encode_picture(image: np.ndarray, size: str) -> bytes:
    """The file bytes of a BGR picture at :data:`SIZES` ``size`` (format :data:`FORMATS`)."""
    wh = SIZES[size]
    if wh is not None:
        image = cv2.resize(image, wh, interpolation=cv2.INTER_AREA)
    ext, flag, quality = FORMATS[size]
    ok, buf = cv2.imencode(ext, image, [flag, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode a picture of shape {image.shape} as {ext}")
    return buf.tobytes()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
