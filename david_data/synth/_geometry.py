"""Ray-cast a few ellipsoids into alpha, depth and normal maps.

The camera is a pinhole with ``fx = fy`` looking down +z (OpenCV axes: x right, y
down). Each ellipsoid is intersected exactly with the ray through every pixel, the
nearest hit wins, so depth and normals agree with one real surface. A faint relief
taken from the RGB texture (a high-pass of its luminance) is added on top so the maps
carry fine detail like real renders; the normals tilt with the relief's slope.

Normals are returned in the convention of the synthetic data: X right, Y up, Z toward
the camera (a surface facing the camera has Z > 0), unit length on the foreground and
(0, 0, 0) on the background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ._assets import Blob

RELIEF_PX = 2.0
"""Peak-to-peak depth of the texture relief, in pixel widths at the surface's distance
(so the normals' detail looks alike at every scale)."""
EDGE_PX = 2.5
"""Width of the soft alpha ramp inside the silhouette, in pixels."""


@dataclass(frozen=True, kw_only=True)
class Maps:
    """Rendered maps over a canvas; depth is +inf where no surface was hit."""

    alpha: np.ndarray
    depth: np.ndarray
    normal: np.ndarray


def render(
    blobs: Sequence[Blob],
    *,
    rgb: np.ndarray,
    fx: float,
    cx: float,
    cy: float,
    z0: float,
    offset: tuple[float, float] = (0.0, 0.0),
) -> Maps:
    """Render ``blobs`` over a canvas the size of ``rgb`` (H, W, 3 uint8 RGB).

    Blob positions are tile pixels shifted by ``offset`` (columns, rows) on the canvas.
    """
    height, width = rgb.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    ray_x, ray_y = (cols - cx) / fx, (rows - cy) / fx  # ray = (ray_x, ray_y, 1): t is z
    depth = np.full((height, width), np.inf)
    normal = np.zeros((height, width, 3))
    for blob in blobs:
        z = z0 + blob.dz
        u, v = blob.u + offset[0], blob.v + offset[1]
        centre = np.array([(u - cx) * z / fx, (v - cy) * z / fx, z])
        radii = np.array([blob.a, blob.b, min(blob.a, blob.b) * blob.thick]) * z / fx
        theta = math.radians(blob.angle)
        rot = np.array(
            [
                [math.cos(theta), -math.sin(theta), 0.0],
                [math.sin(theta), math.cos(theta), 0.0],
                [0, 0, 1],
            ]
        )
        to_unit = np.diag(1.0 / radii) @ rot.T  # camera -> unit-sphere coordinates
        e = [to_unit[k, 0] * ray_x + to_unit[k, 1] * ray_y + to_unit[k, 2] for k in range(3)]
        f = to_unit @ centre
        qa = e[0] ** 2 + e[1] ** 2 + e[2] ** 2
        qb = -2.0 * (e[0] * f[0] + e[1] * f[1] + e[2] * f[2])
        qc = float(f @ f) - 1.0
        disc = qb * qb - 4.0 * qa * qc
        t = (-qb - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * qa)
        nearer = (disc > 0) & (t > 0) & (t < depth)
        depth[nearer] = t[nearer]
        # Outward normal = to_unit^T q, q the hit point in unit-sphere coordinates.
        q = np.stack([t * e[k] - f[k] for k in range(3)], axis=-1)[nearer]
        normal[nearer] = q @ to_unit
    mask = np.isfinite(depth)

    # Texture relief: bright detail comes nearer, smoothly, only on the surface.
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    relief = luma - cv2.GaussianBlur(luma, (0, 0), 3.0)
    relief *= RELIEF_PX / max(float(np.ptp(relief)), 1e-6)
    depth[mask] -= relief[mask] * depth[mask] / fx
    # Tilt the camera-space normal by the relief's slope; in world units per world unit
    # that is its gradient in pixel units, whatever the distance.
    facing = -normal[..., 2]
    normal[..., 0] -= (
        np.asarray(cv2.Sobel(relief, cv2.CV_64F, 1, 0, ksize=3), np.float64) / 8.0 * facing
    )
    normal[..., 1] -= (
        np.asarray(cv2.Sobel(relief, cv2.CV_64F, 0, 1, ksize=3), np.float64) / 8.0 * facing
    )

    out = np.stack(
        [normal[..., 0], -normal[..., 1], -normal[..., 2]], axis=-1
    )  # -> X right, Y up, Z to camera
    length = np.linalg.norm(out, axis=-1, keepdims=True)
    out = np.where(mask[..., None], out / np.where(length > 0, length, 1.0), 0.0).astype(np.float32)
    out[mask] /= np.linalg.norm(out[mask], axis=-1, keepdims=True)  # unit in float32 itself

    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    alpha = np.where(mask, np.clip(np.rint(inside * (255.0 / EDGE_PX)), 1, 255), 0).astype(np.uint8)
    return Maps(alpha=alpha, depth=depth.astype(np.float32), normal=out)
