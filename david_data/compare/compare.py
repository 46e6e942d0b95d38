"""Two runs of one store side by side: per-scenario metrics, their difference, its interval.

The metrics come from the store's ``metrics`` table (written by ``david-data evaluate``),
one row per sample and run. Only samples that *both* runs have a finite value for are
compared, metric by metric, so each difference is paired: mean(B) - mean(A) over the same
samples, with a paired bootstrap interval per scenario (resampled within it) and over all
of them ("all", from the same draws: :func:`~.stats.stratified_bootstrap`). Every sample weighs the same, also for the normal
metrics (the evaluation's summary pools their pixels instead, so its "all" row can differ
slightly from this one's).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..facts import SCENARIOS, scenario_range
from ..infer.metrics import METRIC_NAMES, OVERALL
from ..store import SynthHumanStore, open_store
from .defaults import HEADLINE_METRICS
from .stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    PairedInterval,
    nan_interval,
    stratified_bootstrap,
)

__all__ = [
    "HEADLINE_METRICS",
    "HIGHER_IS_BETTER",
    "METRIC_UNITS",
    "Comparison",
    "ComparisonRow",
    "MetricPairs",
    "compare_runs",
    "default_metrics",
]

HIGHER_IS_BETTER = frozenset(m for m in METRIC_NAMES if "_within_" in m)
"""Metrics where larger is better (shares of pixels under an angle); lower wins elsewhere."""
METRIC_UNITS = {
    "foreground_sad": "SAD / 1000",
    "foreground_mse": "MSE (alpha 0-1)",
    "foreground_sad_trimap": "SAD in trimap band / 1000",
    "depth_rmse": "cm",
    "depth_absrel": "relative",
    "normal_mean_deg": "deg",
    "normal_median_deg": "deg",
    "normal_within_11_25": "share of pixels",
    "normal_within_22_5": "share of pixels",
    "normal_within_30": "share of pixels",
}

FEW_SAMPLES = 20
"""Below this many paired samples a percentile bootstrap interval is known to be too narrow."""
_SCENARIO_STARTS = np.asarray([scenario_range(s).start for s in SCENARIOS], np.int64)
_SCENARIO_ORDER = np.argsort(_SCENARIO_STARTS)


def task_of(metric: str) -> str:
    """``depth``, ``normal`` or ``foreground``: the prediction a metric scores."""
    return metric.split("_", 1)[0]


def default_metrics(tasks_a: Sequence[str], tasks_b: Sequence[str]) -> tuple[str, ...]:
    """The headline metric of each task both runs predicted, in a fixed order."""
    return tuple(m for t, m in HEADLINE_METRICS.items() if t in tasks_a and t in tasks_b)


def scenarios_of(sample_ids: np.ndarray) -> np.ndarray:
    """Scenario name of each sample id (vectorised :func:`david_data.facts.scenario_of`)."""
    starts = _SCENARIO_STARTS[_SCENARIO_ORDER]
    names = np.asarray(SCENARIOS)[_SCENARIO_ORDER]
    return names[np.searchsorted(starts, np.asarray(sample_ids, np.int64), side="right") - 1]


@dataclass(frozen=True, kw_only=True)
class MetricPairs:
    """One metric's paired per-sample values: the samples both runs have it for, ascending."""

    metric: str
    sample_ids: np.ndarray
    a: np.ndarray
    b: np.ndarray
    scenarios: np.ndarray

    @property
    def worsening(self) -> np.ndarray:
        """How much worse B is than A on each sample (B - A, or A - B where higher is better)."""
        sign = -1.0 if self.metric in HIGHER_IS_BETTER else 1.0
        out: np.ndarray = sign * (self.b - self.a)
        return out

    def worst(self, count: int) -> np.ndarray:
        """The ``count`` sample ids where B is most worse than A, worst first (ties: lower id)."""
        order = np.lexsort((self.sample_ids, -self.worsening))
        picked: np.ndarray = self.sample_ids[order[: max(0, count)]]
        return picked


@dataclass(frozen=True, kw_only=True)
class ComparisonRow:
    """One metric over one scenario (or ``"all"``)."""

    metric: str
    scenario: str
    interval: PairedInterval

    @property
    def verdict(self) -> str:
        """``B better``, ``B worse`` or ``no clear difference`` (the interval holds 0)."""
        i = self.interval
        if i.n == 0 or not i.excludes_zero:
            return "no clear difference" if i.n else "no paired samples"
        lower = i.diff < 0
        return "B better" if lower != (self.metric in HIGHER_IS_BETTER) else "B worse"


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """What :func:`compare_runs` found; :meth:`render` is what the CLI prints."""

    store: str
    run_a: str
    run_b: str
    metrics: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    pairs: dict[str, MetricPairs] = field(repr=False)
    samples_a: int
    """Samples run A has metrics for (any metric)."""
    samples_b: int
    samples_both: int
    """Samples both runs have metrics for (before leaving out a metric's NaN values)."""
    resamples: int
    confidence: float
    seed: int

    def row(self, metric: str, scenario: str = OVERALL) -> ComparisonRow:
        for r in self.rows:
            if (r.metric, r.scenario) == (metric, scenario):
                return r
        raise KeyError((metric, scenario))

    def table(self) -> pa.Table:
        """The rows as an Arrow table (what ``-o DIR`` writes as comparison.csv)."""
        records = [
            {
                "metric": r.metric,
                "scenario": r.scenario,
                "samples": r.interval.n,
                "mean_a": _finite(r.interval.mean_a),
                "mean_b": _finite(r.interval.mean_b),
                "diff_b_minus_a": _finite(r.interval.diff),
                "ci_low": _finite(r.interval.low),
                "ci_high": _finite(r.interval.high),
                "verdict": r.verdict,
            }
            for r in self.rows
        ]
        return pa.Table.from_pylist(records)

    def header(self) -> str:
        """The lines above the table: which runs, how many samples, how the interval is made."""
        pct = f"{self.confidence:.0%}"
        return (
            f"A = {self.run_a}, B = {self.run_b} in {self.store}\n"
            f"{self.samples_both} samples both runs have metrics for (A has {self.samples_a}, "
            f"B has {self.samples_b}); only those are compared\n"
            f"B-A: mean difference; CI: {pct} paired bootstrap interval ({self.resamples} "
            f"resamples, seed {self.seed}); lower is better except for normal_within_*"
            + (
                f"\nrows with n < {FEW_SAMPLES}: the bootstrap interval is too narrow to trust, "
                "read their verdict as a hint"
                if any(0 < r.interval.n < FEW_SAMPLES for r in self.rows)
                else ""
            )
        )

    def render(self, width: int = 200) -> str:
        """The comparison as text for a terminal: :meth:`header` and a rich table (as wide
        as its cells, up to ``width``)."""
        from rich.console import Console
        from rich.table import Table

        out = Table(show_header=True, header_style="bold")
        for name, justify in (
            ("metric", "left"), ("scenario", "left"), ("n", "right"),
            ("A", "right"), ("B", "right"),
            ("B-A", "right"), (f"{self.confidence:.0%} CI", "right"), ("verdict", "left"),
        ):  # fmt: skip
            out.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]  # rich's Literal
        for r in self.rows:
            i = r.interval
            out.add_row(
                r.metric, r.scenario, str(i.n), _fmt(i.mean_a), _fmt(i.mean_b),
                _fmt(i.diff, sign=True), f"[{_fmt(i.low, sign=True)}, {_fmt(i.high, sign=True)}]",
                r.verdict,
            )  # fmt: skip
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(out)
        return self.header() + "\n" + console.export_text()

    def markdown(self) -> str:
        """The comparison as a Markdown table (the flow's artifact)."""
        lines = [
            f"# {self.run_b} (B) against {self.run_a} (A)",
            "",
            self.header().replace("\n", "  \n"),
            "",
            "| metric | scenario | n | A | B | B-A | CI | verdict |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            i = r.interval
            lines.append(
                f"| {r.metric} | {r.scenario} | {i.n} | {_fmt(i.mean_a)} | {_fmt(i.mean_b)} | "
                f"{_fmt(i.diff, sign=True)} | [{_fmt(i.low, sign=True)}, {_fmt(i.high, sign=True)}]"
                f" | {r.verdict} |"
            )
        return "\n".join(lines) + "\n"


def compare_runs(
    store: str | SynthHumanStore,
    run_a: str,
    run_b: str,
    *,
    metrics: Sequence[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    storage_options: dict[str, Any] | None = None,
) -> Comparison:
    """Compare run B with run A on the samples both have metrics for.

    ``metrics`` defaults to :func:`default_metrics` of the runs' tasks. An unknown run is
    the store's :class:`~david_data.errors.StoreError` naming the runs there; a run
    without metrics, or metrics neither run can have, a :class:`ConfigError`.
    """
    st = store if isinstance(store, SynthHumanStore) else open_store(store, storage_options)
    info_a, info_b = st.run(run_a), st.run(run_b)
    chosen = _choose_metrics(metrics, info_a.tasks, info_b.tasks, run_a, run_b)
    values_a = _metrics_of(st, run_a, chosen)
    values_b = _metrics_of(st, run_b, chosen)
    return _compare(
        st.url, run_a, run_b, chosen, values_a, values_b,
        resamples=resamples, confidence=confidence, seed=seed,
    )  # fmt: skip


def _compare(
    store_url: str,
    run_a: str,
    run_b: str,
    metrics: tuple[str, ...],
    values_a: dict[str, np.ndarray],
    values_b: dict[str, np.ndarray],
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> Comparison:
    """The comparison of two runs' per-sample values (``sample_id`` ascending and unique,
    one array per metric, NaN where missing)."""
    both, ia, ib = np.intersect1d(
        values_a["sample_id"], values_b["sample_id"], assume_unique=True, return_indices=True
    )
    pairs: dict[str, MetricPairs] = {}
    rows: list[ComparisonRow] = []
    for metric in metrics:
        a, b = values_a[metric][ia], values_b[metric][ib]
        keep = np.isfinite(a) & np.isfinite(b)
        ids = both[keep]
        pair = MetricPairs(
            metric=metric, sample_ids=ids, a=a[keep], b=b[keep], scenarios=scenarios_of(ids)
        )
        pairs[metric] = pair
        if not ids.size:
            rows.append(
                ComparisonRow(metric=metric, scenario=OVERALL, interval=nan_interval(confidence))
            )
            continue
        per_scenario, overall = stratified_bootstrap(
            pair.a, pair.b, pair.scenarios, resamples=resamples, confidence=confidence, seed=seed
        )
        for scenario in SCENARIOS:
            if scenario in per_scenario:
                interval = per_scenario[scenario]
                rows.append(ComparisonRow(metric=metric, scenario=scenario, interval=interval))
        rows.append(ComparisonRow(metric=metric, scenario=OVERALL, interval=overall))
    return Comparison(
        store=store_url,
        run_a=run_a,
        run_b=run_b,
        metrics=metrics,
        rows=tuple(rows),
        pairs=pairs,
        samples_a=int(values_a["sample_id"].size),
        samples_b=int(values_b["sample_id"].size),
        samples_both=int(both.size),
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )


def _choose_metrics(
    metrics: Sequence[str] | None,
    tasks_a: Sequence[str],
    tasks_b: Sequence[str],
    run_a: str,
    run_b: str,
) -> tuple[str, ...]:
    if metrics:
        unknown = [m for m in metrics if m not in METRIC_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown metric(s) {', '.join(unknown)}; choose among {', '.join(METRIC_NAMES)}"
            )
        missing = [m for m in metrics if task_of(m) not in tasks_a or task_of(m) not in tasks_b]
        if missing:
            raise ConfigError(
                f"metric(s) {', '.join(missing)} need a task both runs predicted: {run_a} has "
                f"{', '.join(tasks_a) or 'none'}, {run_b} has {', '.join(tasks_b) or 'none'}"
            )
        return tuple(dict.fromkeys(metrics))
    chosen = default_metrics(tasks_a, tasks_b)
    if not chosen:
        raise ConfigError(
            f"runs {run_a} ({', '.join(tasks_a) or 'no task'}) and {run_b} "
            f"({', '.join(tasks_b) or 'no task'}) predicted no task in common: nothing to compare"
        )
    return chosen


def _metrics_of(
    store: SynthHumanStore, run: str, metrics: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """A run's per-sample values of ``metrics`` (NaN where missing), by ascending sample id."""
    columns = ", ".join(f"CAST({m} AS DOUBLE) AS {m}" for m in metrics)
    quoted = run.replace("'", "''")
    table = store.query(
        f"SELECT sample_id, {columns} FROM metrics WHERE run = '{quoted}' ORDER BY sample_id"
    )
    if not table.num_rows:
        raise ConfigError(
            f"run {run} has no metrics in {store.url}; score it first: "
            f"david-data evaluate {store.url} --run {run}"
        )
    ids = table.column("sample_id").to_numpy(zero_copy_only=False).astype(np.int64)
    ids, first = np.unique(ids, return_index=True)  # a sample scored twice counts once
    out = {"sample_id": ids}
    for m in metrics:
        column = table.column(m).to_numpy(zero_copy_only=False)
        out[m] = np.asarray(column, np.float64)[first]  # NULL arrives as NaN
    return out


def _fmt(value: float, *, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.4g}" if sign else f"{value:.4g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
