"""The DAViD model cards' metrics, per sample and aggregated per scenario.

Per sample (each function takes arrays at the ground truth's size):

- soft foreground (:func:`foreground_metrics`): SAD = sum |pred - gt| over the image on
  0..1 alpha, reported / 1000 as the model card does; MSE = mean (pred - gt)^2; SAD in
  the trimap's unknown band (value 128), also / 1000. The trimap comes from the ground
  truth alpha by :func:`make_trimap`.
- depth (:func:`depth_metrics`): RMSE (cm) and AbsRel = mean |aligned - gt| / gt over
  foreground pixels, after :func:`aligned_depth` fits the prediction to the ground truth.
- normals (:func:`normal_metrics`): angular error in degrees between renormalised
  vectors; mean, median and the share of pixels under 11.25, 22.5 and 30 degrees.

Pixels where the prediction or the ground truth is not finite are left out; a metric
with no pixel to measure is NaN (JSON ``null``), never an error.

Aggregation (:class:`Accumulator`), per scenario and over all samples ("all"):

- foreground and depth metrics: the mean of the per-sample values (each sample
  weighs the same, as in the model cards' benchmark tables);
- normal metrics: pooled over all foreground pixels of the group, as normal benchmarks
  do; pixels are kept as a histogram of 0.05 degree bins, so memory stays flat and the
  pooled median is exact to 0.05 degree (the mean and threshold shares are exact).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..facts import DEPTH_BACKGROUND, FOREGROUND_THRESHOLD, SCENARIOS

__all__ = [
    "ANGLE_THRESHOLDS",
    "DEFAULT_BAND_PX",
    "METRIC_NAMES",
    "OVERALL",
    "Accumulator",
    "SampleMetrics",
    "align_scale_shift",
    "aligned_depth",
    "angular_errors",
    "depth_metrics",
    "evaluate_sample",
    "foreground_metrics",
    "make_trimap",
    "normal_metrics",
]

DEFAULT_BAND_PX = 10
"""Half-width in pixels of the trimap's unknown band around the alpha edge."""
ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)
OVERALL = "all"
"""Group name of the aggregate over every sample."""

_FOREGROUND_KEYS = ("sad", "mse", "sad_trimap")
_DEPTH_KEYS = ("rmse", "absrel")
_NORMAL_KEYS = ("mean_deg", "median_deg", "within_11_25", "within_22_5", "within_30")
METRIC_NAMES = (
    *(f"foreground_{k}" for k in _FOREGROUND_KEYS),
    *(f"depth_{k}" for k in _DEPTH_KEYS),
    *(f"normal_{k}" for k in _NORMAL_KEYS),
)
"""Column names of the aggregated table, in order."""

_BINS_PER_DEGREE = 20
_N_BINS = 180 * _BINS_PER_DEGREE


# --- soft foreground ---------------------------------------------------------------------


def make_trimap(alpha: np.ndarray, band_px: int = DEFAULT_BAND_PX) -> np.ndarray:
    """Trimap from a ground-truth alpha (uint8 0..255): 0 background, 255 foreground, 128 unknown.

    Rule: 255 where alpha is 255 and stays so after eroding by ``band_px``; 0 where alpha
    is 0 and stays so after dilating the non-zero pixels by ``band_px``; 128 elsewhere.
    The unknown band thus holds every soft pixel (0 < alpha < 255) plus ``band_px``
    pixels either side of any edge, hard or soft. ``band_px=0`` marks only soft pixels.
    The structuring element is a disc (OpenCV ellipse) of diameter 2 * band_px + 1.
    """
    a = np.asarray(alpha)
    if a.ndim != 2:
        raise ValueError(f"alpha must be (H, W), got shape {a.shape}")
    if a.dtype != np.uint8:
        raise ValueError(f"alpha must be uint8 0..255, got {a.dtype}")
    if band_px < 0:
        raise ValueError(f"band_px must be >= 0, got {band_px}")
    solid: np.ndarray = (a == 255).astype(np.uint8)
    touched: np.ndarray = (a > 0).astype(np.uint8)
    if band_px:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1,) * 2)
        solid = cv2.erode(solid, kernel, borderType=cv2.BORDER_REPLICATE)
        touched = cv2.dilate(touched, kernel, borderType=cv2.BORDER_REPLICATE)
    trimap = np.full(a.shape, 128, np.uint8)
    trimap[solid > 0] = 255
    trimap[touched == 0] = 0
    return trimap


def foreground_metrics(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None
) -> dict[str, float]:
    """SAD (/1000), MSE and SAD in the trimap's unknown band (/1000) of a soft mask.

    ``pred`` and ``gt`` are (H, W) in [0, 1] (uint8 masks are divided by 255); ``pred``
    is clipped to [0, 1]. Without ``trimap`` it is made from ``gt`` by :func:`make_trimap`.
    """
    p = _unit(pred, "prediction")
    g = _unit(gt, "ground truth")
    _same_shape(p, g, "foreground prediction", "ground truth")
    if trimap is None:
        trimap = make_trimap(np.round(np.nan_to_num(g) * 255.0).astype(np.uint8))
    t = np.asarray(trimap)
    _same_shape(t, g, "trimap", "ground truth")
    valid = np.isfinite(p) & np.isfinite(g)
    diff = np.abs(np.clip(p, 0.0, 1.0) - g)[valid]
    band = (t == 128)[valid]
    return {
        "sad": float(diff.sum()) / 1000.0,
        "mse": float(np.mean(diff**2)) if diff.size else math.nan,
        "sad_trimap": float(diff[band].sum()) / 1000.0,
    }


# --- depth -------------------------------------------------------------------------------


def align_scale_shift(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(scale, shift)`` minimising sum (scale * pred + shift - gt)^2 over ``mask``.

    Pixels that are not finite in either array are left out. A constant prediction gets
    scale 0 and the mean of ``gt`` as shift; an empty mask gives ``(nan, nan)``.
    """
    p = np.asarray(pred, np.float64)
    g = np.asarray(gt, np.float64)
    _same_shape(p, g, "depth prediction", "ground truth")
    m = _bool(mask, g.shape) & np.isfinite(p) & np.isfinite(g)
    if not m.any():
        return math.nan, math.nan
    x, y = p[m], g[m]
    dx = x - x.mean()
    # np.sum, not np.dot: BLAS splits a dot product over its threads, so its last bits
    # depend on the thread count (a Dask worker runs BLAS on one); pairwise sums do not.
    var = float(np.sum(dx * dx))
    scale = float(np.sum(dx * (y - y.mean()))) / var if var > 0 else 0.0
    return scale, float(y.mean() - scale * x.mean())


def aligned_depth(pred: np.ndarray, gt_depth_cm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The prediction mapped into the ground truth's centimetres: the one alignment choice.

    A DAViD depth model outputs relative *inverse* depth (larger = nearer). Here it is
    fitted directly to the metric depth with a free scale (negative in practice, since
    larger means nearer) and shift: ``scale * pred + shift``. This matches the model
    card's "best scale-and-shift alignment of prediction to ground truth" literally, and
    is exact when the prediction is affine in depth. The alternative, usual for MiDaS-style
    models, fits ``scale * pred + shift`` to ``1 / gt`` (disparity space) and inverts the
    result; it is exact when the prediction is affine in inverse depth. To switch, change
    only this function.
    """
    scale, shift = align_scale_shift(pred, gt_depth_cm, mask)
    return scale * np.asarray(pred, np.float64) + shift


def depth_metrics(
    pred: np.ndarray, gt_depth_cm: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """RMSE (cm) and AbsRel of the aligned prediction over ``mask``.

    Pixels with ground truth not finite, <= 0 or at the 65504 background never count;
    ``mask=None`` means every other pixel. No pixel left gives NaN values.
    """
    g = np.asarray(gt_depth_cm, np.float64)
    p = np.asarray(pred, np.float64)
    _same_shape(p, g, "depth prediction", "ground truth")
    m = np.isfinite(g) & (g > 0) & (g < DEPTH_BACKGROUND) & np.isfinite(p)
    if mask is not None:
        m &= _bool(mask, g.shape)
    if not m.any():
        return {"rmse": math.nan, "absrel": math.nan}
    a = aligned_depth(p, g, m)[m]
    t = g[m]
    err = a - t
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "absrel": float(np.mean(np.abs(err) / t)),
    }


# --- normals -----------------------------------------------------------------------------


def angular_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Angles in degrees (1-D float64) between renormalised normals at the counted pixels.

    Pixels outside ``mask``, with a non-finite component or a zero-length vector in
    either array are left out.
    """
    p = np.asarray(pred, np.float64)
    g = np.asarray(gt, np.float64)
    if p.ndim != 3 or p.shape[2] != 3:
        raise ValueError(f"normals must be (H, W, 3), got prediction shape {p.shape}")
    _same_shape(p, g, "normal prediction", "ground truth")
    np_, ng = np.linalg.norm(p, axis=2), np.linalg.norm(g, axis=2)
    m = np.isfinite(np_) & np.isfinite(ng) & (np_ > 1e-12) & (ng > 1e-12)
    if mask is not None:
        m &= _bool(mask, g.shape[:2])
    u = p[m] / np_[m][:, None]
    v = g[m] / ng[m][:, None]
    # atan2 of |u x v| and u.v stays accurate for tiny and near-180 degree angles.
    cross = np.linalg.norm(np.cross(u, v), axis=1)
    dot = np.einsum("ij,ij->i", u, v)
    angles: np.ndarray = np.degrees(np.arctan2(cross, dot))  # numpy's stubs: Any here
    return angles


def normal_metrics(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Mean and median angular error (degrees) and shares (0..1) within 11.25, 22.5, 30 degrees."""
    return _normal_summary(angular_errors(pred, gt, mask))


# --- one sample against its ground truth -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SampleMetrics:
    """One sample's metrics (flat names as in :data:`METRIC_NAMES`) and its angle histogram.

    The histogram takes 29 KB: add each result to an :class:`Accumulator` as it comes
    and keep only :meth:`row` per sample, rather than holding many of these.
    """

    scenario: str
    sample_id: int | None = None
    values: dict[str, float] = field(default_factory=dict)
    angle_histogram: np.ndarray | None = None
    """Counts of normal angular errors in 0.05 degree bins (for pooling), if normals ran."""

    def row(self) -> dict[str, Any]:
        """A plain table row: sample_id, scenario and every metric (NaN as None)."""
        row: dict[str, Any] = {"sample_id": self.sample_id, "scenario": self.scenario}
        row.update({k: _plain(self.values.get(k, math.nan)) for k in METRIC_NAMES})
        return row


def evaluate_sample(
    outputs: Mapping[str, np.ndarray],
    *,
    alpha: np.ndarray,
    depth: np.ndarray | None = None,
    normal: np.ndarray | None = None,
    scenario: str,
    sample_id: int | None = None,
    band_px: int = DEFAULT_BAND_PX,
) -> SampleMetrics:
    """Score one sample's model outputs (``depth``/``normal``/``foreground``) against its truth.

    ``alpha`` is the ground-truth uint8 alpha; depth and normals are scored on its
    foreground (alpha > 127), depth also only where the ground truth is not background.
    """
    a = np.asarray(alpha)
    solid = a > FOREGROUND_THRESHOLD
    values: dict[str, float] = {}
    histogram = None
    if "foreground" in outputs:
        fg = foreground_metrics(outputs["foreground"], a, make_trimap(a, band_px))
        values.update({f"foreground_{k}": v for k, v in fg.items()})
    if "depth" in outputs:
        if depth is None:
            raise ValueError("a depth output needs the ground-truth depth to be scored")
        values.update(
            {f"depth_{k}": v for k, v in depth_metrics(outputs["depth"], depth, solid).items()}
        )
    if "normal" in outputs:
        if normal is None:
            raise ValueError("a normal output needs the ground-truth normals to be scored")
        angles = angular_errors(outputs["normal"], normal, solid)
        histogram = _histogram(angles)
        values.update({f"normal_{k}": v for k, v in _normal_summary(angles).items()})
    return SampleMetrics(
        scenario=scenario, sample_id=sample_id, values=values, angle_histogram=histogram
    )


# --- aggregation -------------------------------------------------------------------------


@dataclass
class _Group:
    samples: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(_N_BINS, np.int64))
    angle_sum: float = 0.0

    def add(self, sample: SampleMetrics) -> None:
        self.samples += 1
        for key, value in sample.values.items():
            if key.startswith("normal_") or not math.isfinite(value):
                continue
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1
        if sample.angle_histogram is not None:
            self.histogram += sample.angle_histogram
            pixels = int(sample.angle_histogram.sum())
            if pixels:
                self.angle_sum += sample.values["normal_mean_deg"] * pixels

    def merge(self, other: _Group) -> None:
        self.samples += other.samples
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + other.counts[key]
        self.histogram += other.histogram
        self.angle_sum += other.angle_sum

    def metrics(self) -> dict[str, float]:
        out = {k: self.sums[k] / self.counts[k] for k in self.sums}
        pixels = int(self.histogram.sum())
        if pixels:
            cumulative = np.cumsum(self.histogram)
            out["normal_mean_deg"] = self.angle_sum / pixels
            out["normal_median_deg"] = _histogram_median(self.histogram, cumulative, pixels)
            for key, limit in zip(_NORMAL_KEYS[2:], ANGLE_THRESHOLDS, strict=True):
                below = int(round(limit * _BINS_PER_DEGREE))
                out[f"normal_{key}"] = float(cumulative[below - 1]) / pixels
        return out


class Accumulator:
    """Combines :class:`SampleMetrics` per scenario and overall; mergeable and picklable.

    ``rows()`` gives a plain table (one dict per group, scenarios first, then "all");
    ``to_dict()`` the same as JSON-ready data with counts and the aggregation rules.
    """

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self._all = _Group()

    def add(self, sample: SampleMetrics) -> None:
        """Count one sample in its scenario and in the overall group."""
        self._groups.setdefault(sample.scenario, _Group()).add(sample)
        self._all.add(sample)

    def extend(self, samples: Iterable[SampleMetrics]) -> None:
        for sample in samples:
            self.add(sample)

    def merge(self, other: Accumulator) -> None:
        """Add another accumulator's samples (e.g. from another batch or worker)."""
        for name, group in other._groups.items():
            self._groups.setdefault(name, _Group()).merge(group)
        self._all.merge(other._all)

    def __len__(self) -> int:
        return self._all.samples

    def _ordered(self) -> list[tuple[str, _Group]]:
        known = [s for s in SCENARIOS if s in self._groups]
        other = sorted(s for s in self._groups if s not in SCENARIOS)
        return [(s, self._groups[s]) for s in known + other] + [(OVERALL, self._all)]

    def rows(self) -> list[dict[str, Any]]:
        """One row per group: ``scenario``, ``samples`` and each of :data:`METRIC_NAMES`."""
        rows = []
        for name, group in self._ordered():
            values = group.metrics()
            row: dict[str, Any] = {"scenario": name, "samples": group.samples}
            row.update({k: _plain(values.get(k, math.nan)) for k in METRIC_NAMES})
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary: rules, then per group its samples, metrics and counts."""
        groups = {}
        for name, group in self._ordered():
            values = group.metrics()
            counts = dict(group.counts)
            if group.histogram.any():
                counts["normal_pixels"] = int(group.histogram.sum())
            groups[name] = {
                "samples": group.samples,
                "metrics": {k: _plain(values.get(k, math.nan)) for k in METRIC_NAMES},
                "counts": counts,
            }
        return {
            "aggregation": {
                "foreground": "mean over samples of per-sample SAD/1000, MSE, trimap SAD/1000",
                "depth": "mean over samples of per-sample RMSE (cm) and AbsRel after "
                "least-squares scale and shift of the prediction to depth in cm",
                "normal": "pooled over all foreground pixels (median to 0.05 degree)",
                "trimap": "unknown band = soft alpha pixels plus band_px pixels either "
                "side of the alpha edge (make_trimap)",
            },
            "groups": groups,
        }


# --- helpers -----------------------------------------------------------------------------


def _normal_summary(angles: np.ndarray) -> dict[str, float]:
    if not angles.size:
        return dict.fromkeys(_NORMAL_KEYS, math.nan)
    out = {"mean_deg": float(angles.mean()), "median_deg": float(np.median(angles))}
    for key, limit in zip(_NORMAL_KEYS[2:], ANGLE_THRESHOLDS, strict=True):
        out[key] = float(np.mean(angles < limit))
    return out


def _histogram(angles: np.ndarray) -> np.ndarray:
    bins = np.clip((angles * _BINS_PER_DEGREE).astype(np.int64), 0, _N_BINS - 1)
    return np.bincount(bins, minlength=_N_BINS).astype(np.int64)


def _histogram_median(histogram: np.ndarray, cumulative: np.ndarray, total: int) -> float:
    """Median of binned angles, interpolated linearly inside the bin that holds it."""
    half = total / 2.0
    k = int(np.searchsorted(cumulative, half))
    before = float(cumulative[k - 1]) if k else 0.0
    inside = float(histogram[k])
    fraction = (half - before) / inside if inside else 0.5
    return (k + fraction) / _BINS_PER_DEGREE


def _unit(mask: np.ndarray, what: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"the foreground {what} must be (H, W), got shape {m.shape}")
    if m.dtype == np.uint8:
        return m.astype(np.float64) / 255.0
    return m.astype(np.float64)


def _bool(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"mask is {m.shape} but the ground truth is {tuple(shape)}")
    return m if m.dtype == bool else m > 0


def _same_shape(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{what_a} has shape {a.shape} but {what_b} has {b.shape}; resize the "
            "prediction to the ground truth's size first"
        )


def _plain(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
