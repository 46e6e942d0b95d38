"""The paired bootstrap: how sure a difference between two runs on the same samples is.

Both runs scored the same samples, so each sample gives one difference ``b - a``; the
bootstrap resamples samples (with replacement, the pair kept together) and takes the
mean difference of each resample. The interval is the central ``confidence`` share of
those means (the percentile method). Over several scenarios, each is resampled within
itself and the overall interval comes from the same draws (:func:`stratified_bootstrap`). Resampling is vectorised with numpy and seeded, so
the same inputs give the same interval; memory stays flat however many samples there are
(resamples are drawn in blocks of about four million indices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "PairedInterval",
    "nan_interval",
    "paired_bootstrap",
    "stratified_bootstrap",
]

_BLOCK = 1 << 22
"""Most indices drawn at once (16 MiB of int32)."""


@dataclass(frozen=True, kw_only=True)
class PairedInterval:
    """``diff`` = mean(b) - mean(a) over ``n`` paired samples, inside [``low``, ``high``]."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    confidence: float

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly on one side of 0: the runs differ at this confidence."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> PairedInterval:
    """Mean difference ``b - a`` of paired per-sample values and its bootstrap interval.

    ``a`` and ``b`` are 1-D, the same length, finite (leave out the samples either run
    lacks first). A difference that is the same for every sample gives a zero-width
    interval at that value.
    """
    x, y = _checked(a, b, resamples, confidence)
    means = _resample_means(y - x, resamples, np.random.default_rng(seed))
    return _interval(x, y, means, confidence)


def stratified_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    groups: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[dict[str, PairedInterval], PairedInterval]:
    """:func:`paired_bootstrap` of each group (resampled within itself) and of all samples,
    from one set of draws: a resample of all samples is the groups' resamples together
    (each group keeps its size, as scenarios do by design), so its mean is the groups'
    means weighted by their sizes. Groups come back in sorted order."""
    x, y = _checked(a, b, resamples, confidence)
    labels = np.asarray(groups)
    if labels.shape != x.shape:
        raise ValueError(f"groups must label each sample: {labels.shape} for {x.shape}")
    d = y - x
    per_group: dict[str, PairedInterval] = {}
    total = np.zeros(resamples, np.float64)
    for index, name in enumerate(np.unique(labels)):
        member = labels == name
        means = _resample_means(d[member], resamples, np.random.default_rng([seed, index]))
        per_group[str(name)] = _interval(x[member], y[member], means, confidence)
        total += means * (member.sum() / d.size)
    return per_group, _interval(x, y, total, confidence)


def _checked(
    a: np.ndarray, b: np.ndarray, resamples: int, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"paired values must be two 1-D arrays of one length, got {x.shape} and {y.shape}"
        )
    if not x.size:
        raise ValueError("no paired samples to compare")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("paired values must be finite; leave out the samples either run lacks")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    return x, y


def _resample_means(d: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The mean of ``d`` over each of ``resamples`` draws of ``d.size`` samples with replacement."""
    n = d.size
    means = np.empty(resamples, np.float64)
    step = max(1, _BLOCK // n)
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        # int32 indices: drawn twice as fast as int64 (n is far below 2**31).
        picks = rng.integers(0, n, size=(count, n), dtype=np.int32)
        means[start : start + count] = d[picks].mean(axis=1)
    return means


def _interval(x: np.ndarray, y: np.ndarray, means: np.ndarray, confidence: float) -> PairedInterval:
    d = y - x
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    diff = float(d.mean())
    if np.all(d == d[0]):  # every resample is that value: no rounding noise around it
        low = high = diff
    return PairedInterval(
        n=int(d.size),
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        diff=diff,
        low=float(low),
        high=float(high),
        confidence=confidence,
    )


def nan_interval(confidence: float) -> PairedInterval:
    """The row for a group with no paired sample."""
    nan = math.nan
    return PairedInterval(
        n=0, mean_a=nan, mean_b=nan, diff=nan, low=nan, high=nan, confidence=confidence
    )
