"""SynthHuman-aware transforms of one sample (a dict of numpy arrays), with or without torch.

A sample holds any of ``rgb`` (H, W, 3) uint8, ``alpha`` (H, W) uint8, ``depth`` (H, W),
``normal`` (H, W, 3), ``intrinsics`` (3, 3), plus what transforms add (``valid``,
``disparity``). Every transform returns a new dict with new, C-contiguous arrays and
leaves the keys it does not know unchanged; other arrays of shape (H, W, ...) are
treated as images (resized with nearest neighbour). Pass one to ``store.loader(...,
transform=...)``: :class:`Compose` chains several, ``functools.partial`` sets options,
and both pickle into DataLoader workers.

Conventions (stated once, followed everywhere):

- **Pixels**: integer coordinates sit at pixel centres (OpenCV's convention); pixel
  ``u`` covers ``[u - 0.5, u + 0.5]`` and an image ``W`` wide spans ``[-0.5, W - 0.5]``.
- **Camera**: ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` maps a point (X, Y, Z) in
  OpenCV camera axes (x right, y down, z forward) to ``u = fx X / Z + cx``,
  ``v = fy Y / Z + cy``; depth is Z.
- **Normals**: unit vectors whose X axis points right in the image (the synthetic data
  uses X right, Y up, Z toward the camera); background normals are (0, 0, 0).
- **Depth**: the store holds centimetres; pixels without a surface hold 65504 (the
  largest float16). :func:`metric_depth` gives metres and a ``valid`` mask.
- **Resize** to ``(H', W')``: ``sx = W'/W``, ``sy = H'/H``; ``fx' = sx fx``,
  ``cx' = sx (cx + 0.5) - 0.5`` (likewise fy, cy): pixel centres map as ``cv2.resize``
  maps them. rgb and alpha are resampled with area averaging when shrinking and
  bilinearly otherwise, normals bilinearly and then renormalised to unit length,
  depth, disparity, ``valid`` and other images with nearest neighbour (centre-aligned),
  so no depth is invented between a surface and the background.
- **Crop** at ``(top, left)``: ``cx' = cx - left``, ``cy' = cy - top``.
- **Horizontal flip**: pixel ``u`` moves to ``W - 1 - u``, so ``cx' = W - 1 - cx``, and
  the normals' X is negated. Back-projecting the flipped depth with the flipped
  intrinsics gives the original surface mirrored in the plane X = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from . import facts
from .errors import ConfigError

Sample = dict[str, Any]
LINEAR = ("rgb", "alpha")
NOT_IMAGES = ("intrinsics", "sample_id")


def depth_to_metres(depth_cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth in metres (float32, 0 where invalid) and the validity mask: a pixel is valid
    when its depth is finite, positive and below the background value 65504."""
    depth = np.asarray(depth_cm, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0) & (depth < np.float32(facts.DEPTH_BACKGROUND))
    metres = np.where(valid, depth / np.float32(100.0), np.float32(0.0)).astype(np.float32)
    return metres, valid


def depth_to_disparity(depth_m: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Inverse depth in 1/metre (float32), 0 where invalid."""
    depth = np.asarray(depth_m, dtype=np.float32)
    out = np.zeros_like(depth)
    np.divide(np.float32(1.0), depth, out=out, where=np.asarray(valid, dtype=bool))
    return out


def renormalize_normals(normal: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Each pixel's normal scaled to unit length (float32); vectors shorter than ``eps``
    (the background) become (0, 0, 0)."""
    normal = np.asarray(normal, dtype=np.float32)
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    out = np.zeros_like(normal)
    np.divide(normal, length, out=out, where=length > eps)
    return out


def _size(sample: Sample) -> tuple[int, int]:
    for key in ("rgb", "alpha", "depth", "normal", "valid", "disparity"):
        if key in sample:
            height, width = np.shape(sample[key])[:2]
            return int(height), int(width)
    raise ConfigError(
        f"the sample has no image (keys: {', '.join(sample)}); "
        "load at least one of rgb, alpha, depth, normal"
    )


def _images(sample: Sample, size: tuple[int, int]) -> list[str]:
    return [
        key
        for key, value in sample.items()
        if key not in NOT_IMAGES
        and isinstance(value, np.ndarray)
        and value.ndim >= 2
        and value.shape[:2] == size
    ]


def _intrinsics(sample: Sample) -> np.ndarray | None:
    if "intrinsics" not in sample:
        return None
    return np.array(sample["intrinsics"], dtype=np.float64)


def metric_depth(sample: Sample) -> Sample:
    """``depth`` converted from centimetres to metres (0 where invalid), plus ``valid``."""
    if "depth" not in sample:
        raise ConfigError("metric_depth needs the depth field; add 'depth' to the loader's fields")
    metres, valid = depth_to_metres(sample["depth"])
    return {**sample, "depth": metres, "valid": valid}


def add_disparity(sample: Sample) -> Sample:
    """Adds ``disparity`` (1/metre, 0 where invalid); needs :func:`metric_depth` first."""
    if "valid" not in sample or "depth" not in sample:
        raise ConfigError("add_disparity needs depth in metres: apply metric_depth before it")
    return {**sample, "disparity": depth_to_disparity(sample["depth"], sample["valid"])}


def _nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = ((np.arange(height) + 0.5) * image.shape[0] / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * image.shape[1] / width).astype(np.intp)
    return np.ascontiguousarray(image[rows[:, None], cols[None, :]])


def _cv2_resize(image: np.ndarray, height: int, width: int, interpolation: int) -> np.ndarray:
    work = image.astype(np.float32) if image.dtype == np.float16 else image
    out = cv2.resize(np.ascontiguousarray(work), (width, height), interpolation=interpolation)
    if image.ndim == 3 and out.ndim == 2:  # cv2 drops a trailing axis of length 1
        out = out[..., None]
    return out.astype(image.dtype, copy=False)


def resize(sample: Sample, height: int, width: int) -> Sample:
    """Every image resized to ``height`` x ``width`` and the intrinsics scaled to match
    (interpolation per field and the centre convention as in the module docstring)."""
    if height < 1 or width < 1:
        raise ConfigError(f"resize needs a positive size, got {height} x {width}")
    old_h, old_w = _size(sample)
    out = dict(sample)
    shrink = height < old_h and width < old_w
    for key in _images(sample, (old_h, old_w)):
        image = np.asarray(sample[key])
        if key in LINEAR:
            method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            out[key] = _cv2_resize(image, height, width, method)
        elif key == "normal":
            out[key] = renormalize_normals(_cv2_resize(image, height, width, cv2.INTER_LINEAR))
        else:
            out[key] = _nearest(image, height, width)
    k = _intrinsics(sample)
    if k is not None:
        sx, sy = width / old_w, height / old_h
        k[0, 0], k[1, 1] = k[0, 0] * sx, k[1, 1] * sy
        k[0, 2], k[1, 2] = sx * (k[0, 2] + 0.5) - 0.5, sy * (k[1, 2] + 0.5) - 0.5
        out["intrinsics"] = k
    return out


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """The window of ``height`` x ``width`` pixels whose top-left pixel is (top, left),
    with the principal point moved to match; the window must lie inside the image."""
    old_h, old_w = _size(sample)
    inside = top >= 0 and top + height <= old_h and left >= 0 and left + width <= old_w
    if not inside or height < 1 or width < 1:
        raise ConfigError(
            f"crop window top={top} left={left} {height}x{width} is not inside the "
            f"{old_h}x{old_w} image; choose a window within it"
        )
    out = dict(sample)
    for key in _images(sample, (old_h, old_w)):
        out[key] = np.ascontiguousarray(
            np.asarray(sample[key])[top : top + height, left : left + width]
        )
    k = _intrinsics(sample)
    if k is not None:
        k[0, 2] -= left
        k[1, 2] -= top
        out["intrinsics"] = k
    return out


def hflip(sample: Sample) -> Sample:
    """The mirror image: images flipped left-right, the normals' X negated and
    ``cx' = W - 1 - cx`` (pixel centres at integer coordinates)."""
    size = _size(sample)
    out = dict(sample)
    for key in _images(sample, size):
        flipped = np.ascontiguousarray(np.asarray(sample[key])[:, ::-1])
        if key == "normal":
            flipped[..., 0] = -flipped[..., 0]
        out[key] = flipped
    k = _intrinsics(sample)
    if k is not None:
        k[0, 2] = size[1] - 1 - k[0, 2]
        out["intrinsics"] = k
    return out


def foreground_box(
    alpha: np.ndarray, *, margin: float = 0.1, threshold: float = 0.5, aspect: float | None = None
) -> tuple[int, int, int, int] | None:
    """``(top, left, height, width)`` of the foreground (alpha >= ``threshold`` x 255) grown by
    ``margin`` times its size on each side, widened or heightened about its centre to
    ``height / width == aspect`` when given, and clipped to the image; None when the
    sample has no foreground."""
    if margin < 0 or not 0 < threshold <= 1 or (aspect is not None and aspect <= 0):
        raise ConfigError(
            f"foreground crop needs margin >= 0, 0 < threshold <= 1 and aspect > 0; got "
            f"margin={margin}, threshold={threshold}, aspect={aspect}"
        )
    mask = np.asarray(alpha) >= threshold * 255
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    img_h, img_w = mask.shape
    y0, y1 = rows[0] - 0.5, rows[-1] + 0.5  # edges of the box, in pixel-centre coordinates
    x0, x1 = cols[0] - 0.5, cols[-1] + 0.5
    h, w = y1 - y0, x1 - x0
    y0, y1, x0, x1 = y0 - margin * h, y1 + margin * h, x0 - margin * w, x1 + margin * w
    if aspect is not None:
        h, w = y1 - y0, x1 - x0
        if h / w < aspect:
            grow = (aspect * w - h) / 2
            y0, y1 = y0 - grow, y1 + grow
        else:
            grow = (h / aspect - w) / 2
            x0, x1 = x0 - grow, x1 + grow
    top, bottom = max(0, int(np.floor(y0 + 0.5))), min(img_h, int(np.ceil(y1 + 0.5)))
    left, right = max(0, int(np.floor(x0 + 0.5))), min(img_w, int(np.ceil(x1 + 0.5)))
    return top, left, bottom - top, right - left


def foreground_crop(
    sample: Sample, *, margin: float = 0.1, threshold: float = 0.5, aspect: float | None = None
) -> Sample:
    """The sample cropped to its foreground box (:func:`foreground_box`, from ``alpha``),
    intrinsics updated; unchanged when it has no foreground."""
    if "alpha" not in sample:
        raise ConfigError(
            "foreground_crop needs the alpha field; add 'alpha' to the loader's fields"
        )
    box = foreground_box(sample["alpha"], margin=margin, threshold=threshold, aspect=aspect)
    return dict(sample) if box is None else crop(sample, *box)


class Compose:
    """Apply transforms in order (picklable when they are)."""

    def __init__(self, *transforms: Callable[[Sample], Sample]) -> None:
        self.transforms = transforms

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def __repr__(self) -> str:
        return f"Compose({', '.join(getattr(t, '__name__', repr(t)) for t in self.transforms)})"


__all__ = [
    "Compose",
    "add_disparity",
    "crop",
    "depth_to_disparity",
    "depth_to_metres",
    "foreground_box",
    "foreground_crop",
    "hflip",
    "metric_depth",
    "renormalize_normals",
    "resize",
]
