"""What ``compare`` does when not told: plain values, apart from the code that uses them,
so that ``david-data --help`` reads them without loading the store, models or OpenCV."""

from __future__ import annotations

HEADLINE_METRICS = {
    "depth": "depth_absrel",
    "normal": "normal_mean_deg",
    "foreground": "foreground_sad",
}
"""The metric compared by default for each task both runs predicted (the model cards' lead)."""
DEFAULT_RESAMPLES = 2000
"""Bootstrap resamples of the samples (paired: each keeps its A and B values)."""
DEFAULT_CONFIDENCE = 0.95
"""Share of the resampled mean differences inside the interval."""
DEFAULT_WORST = 4
"""Samples in each worst-sample panel."""
