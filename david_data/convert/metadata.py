"""Per-sample metadata rows (the schema is :mod:`david_data.format.metadata`).

One row per sample the source holds, converted or not. Statistics over foreground
pixels use ``alpha > 127`` (:data:`~david_data.facts.FOREGROUND_THRESHOLD`) and, for
depth, only pixels with a valid depth (``< 65504``). The bounding box is inclusive pixel
coordinates (x right, y down) of the foreground pixels, null when there are none.
Field of view is ``2 * atan(size / (2 * focal))`` in degrees.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import facts
from ..format.metadata import SCHEMA, STATUS_ERROR, STATUS_OK
from .decode import Sample


def sample_row(sample: Sample, *, part: str, part_sha256: str | None, shard: int) -> dict[str, Any]:
    """The metadata row of a converted sample."""
    alpha, depth, k = sample.alpha, sample.depth, sample.intrinsics
    height, width = alpha.shape
    fg = alpha > facts.FOREGROUND_THRESHOLD
    row: dict[str, Any] = _base_row(sample.sample_id, part, part_sha256, shard)
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    row.update(
        fx=fx,
        fy=fy,
        cx=cx,
        cy=cy,
        width=width,
        height=height,
        foreground_fraction=float(alpha.mean(dtype=np.float64) / 255.0),
        fov_x_deg=math.degrees(2 * math.atan(width / (2 * fx))) if fx > 0 else None,
        fov_y_deg=math.degrees(2 * math.atan(height / (2 * fy))) if fy > 0 else None,
    )
    if fg.any():
        ys = np.flatnonzero(fg.any(axis=1))
        xs = np.flatnonzero(fg.any(axis=0))
        row.update(
            bbox_x_min=int(xs[0]),
            bbox_y_min=int(ys[0]),
            bbox_x_max=int(xs[-1]),
            bbox_y_max=int(ys[-1]),
        )
    valid = depth[fg & (depth < facts.DEPTH_BACKGROUND)].astype(np.float64)
    if valid.size:
        row.update(
            depth_min_cm=float(valid.min()),
            depth_median_cm=float(np.median(valid)),
            depth_max_cm=float(valid.max()),
        )
    return row


def error_row(
    sample_id: int, error: str, *, part: str, part_sha256: str | None, shard: int
) -> dict[str, Any]:
    """The metadata row of a sample that could not be converted."""
    row = _base_row(sample_id, part, part_sha256, shard)
    row.update(status=STATUS_ERROR, error=error)
    return row


def _base_row(sample_id: int, part: str, part_sha256: str | None, shard: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SCHEMA.names)
    row.update(
        sample_id=sample_id,
        part=part,
        scenario=facts.scenario_of(sample_id),
        part_sha256=part_sha256,
        shard=shard,
        status=STATUS_OK,
    )
    return row
