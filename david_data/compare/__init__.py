"""Compare two runs of a store: per-scenario metrics, B - A and a paired bootstrap interval.

``compare_runs(store, "a", "b")`` reads the ``metrics`` table that ``david-data evaluate``
wrote for both runs and returns a :class:`Comparison` (``render()`` is what
``david-data compare`` prints); ``write_comparison(comparison, "out/")`` adds the table
as CSV and the PNG charts and worst-sample panels. Only samples both runs have metrics
for are compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
    from .compare import (
        HIGHER_IS_BETTER,
        METRIC_UNITS,
        Comparison,
        ComparisonRow,
        MetricPairs,
        compare_runs,
        default_metrics,
    )
    from .defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_WORST, HEADLINE_METRICS
    from .plots import write_comparison
    from .stats import PairedInterval, paired_bootstrap, stratified_bootstrap
else:
    from .. import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_WORST",
    "HEADLINE_METRICS",
    "HIGHER_IS_BETTER",
    "METRIC_UNITS",
    "Comparison",
    "ComparisonRow",
    "MetricPairs",
    "PairedInterval",
    "compare_runs",
    "default_metrics",
    "paired_bootstrap",
    "stratified_bootstrap",
    "write_comparison",
]
