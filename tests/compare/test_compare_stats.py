"""The paired bootstrap and the per-scenario comparison, on values made here."""

from __future__ import annotations

import numpy as np
import pytest

from david_data.compare import paired_bootstrap, stratified_bootstrap
from david_data.compare.compare import _compare, default_metrics, scenarios_of
from david_data.facts import SCENARIOS, scenario_of, scenario_range


def test_the_difference_is_the_paired_mean_and_the_interval_holds_it() -> None:
    rng = np.random.default_rng(1)
    a = rng.gamma(3.0, 1.0, 200)
    b = a + rng.normal(0.3, 1.0, 200)
    interval = paired_bootstrap(a, b, resamples=2000, seed=0)
    assert interval.n == 200
    assert interval.diff == pytest.approx(b.mean() - a.mean(), rel=1e-12)
    assert interval.low < interval.diff < interval.high
    assert interval.low > 0  # 0.3 +- 1 over 200 samples: B is clearly higher
    assert paired_bootstrap(a, b, resamples=2000, seed=0) == interval  # seeded
    assert paired_bootstrap(a, b, resamples=2000, seed=1) != interval


def test_the_interval_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(10.0, 2.0, 3200)
    b = a + rng.normal(0.0, 1.0, 3200)
    widths = [paired_bootstrap(a[:n], b[:n], seed=0).width for n in (50, 200, 800, 3200)]
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < widths[0] / 4  # ~ 1 / sqrt(n): 64x the samples, 1/8 the width


def test_pairing_makes_a_shared_offset_certain() -> None:
    """Per-sample values vary a lot but B is A + 1 on each: the paired interval is [1, 1]."""
    a = np.random.default_rng(3).normal(0.0, 100.0, 50)
    interval = paired_bootstrap(a, a + 1.0)
    assert interval.diff == interval.low == interval.high == pytest.approx(1.0)


def test_a_run_against_itself_is_zero_with_a_zero_width_interval() -> None:
    a = np.random.default_rng(4).random(30)
    interval = paired_bootstrap(a, a)
    assert (interval.diff, interval.low, interval.high, interval.width) == (0.0, 0.0, 0.0, 0.0)
    assert not interval.excludes_zero


def test_more_samples_than_one_block_of_indices_still_resample_right() -> None:
    """Past 4M samples each block holds one resample (memory stays at one block)."""
    a = np.zeros(4_500_000, np.float64)
    b = np.ones_like(a)
    b[::2] = 0.0
    interval = paired_bootstrap(a, b, resamples=3, seed=0)
    assert interval.diff == 0.5 and 0.499 < interval.low <= interval.high < 0.501


def test_stratified_groups_and_overall_come_from_the_same_draws() -> None:
    rng = np.random.default_rng(5)
    groups = np.repeat(np.asarray(["face", "full_body", "upper_body"]), [40, 100, 60])
    a = rng.gamma(2.0, 1.0, groups.size)
    b = a + np.where(groups == "face", 1.0, 0.0) + rng.normal(0.0, 0.5, groups.size)
    per_group, overall = stratified_bootstrap(a, b, groups, resamples=1000, seed=0)
    assert list(per_group) == ["face", "full_body", "upper_body"]
    for name, interval in per_group.items():
        member = groups == name
        assert interval.n == member.sum()
        assert interval.diff == pytest.approx(b[member].mean() - a[member].mean())
        assert interval.low < interval.diff < interval.high
    assert overall.n == 200 and overall.diff == pytest.approx(b.mean() - a.mean())
    assert overall.low < overall.diff < overall.high
    assert per_group["face"].excludes_zero and not per_group["full_body"].excludes_zero
    assert overall.width < min(i.width for i in per_group.values())  # more samples
    same, overall_same = stratified_bootstrap(a, a, groups)
    assert {(i.low, i.high) for i in [*same.values(), overall_same]} == {(0.0, 0.0)}


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([], [], "no paired samples"),
        ([1.0], [1.0, 2.0], "one length"),
        ([1.0, np.nan], [1.0, 2.0], "finite"),
    ],
)
def test_bad_inputs_are_named(a: list[float], b: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(np.asarray(a), np.asarray(b))


def test_scenarios_of_matches_facts() -> None:
    ids = np.asarray(
        [r.start for r in map(scenario_range, SCENARIOS)]
        + [r.stop - 1 for r in map(scenario_range, SCENARIOS)]
        + [5, 150_000, 250_000]
    )
    assert list(scenarios_of(ids)) == [scenario_of(int(i)) for i in ids]


def test_default_metrics_are_the_headlines_of_shared_tasks() -> None:
    assert default_metrics(("depth", "normal", "foreground"), ("normal", "depth")) == (
        "depth_absrel",
        "normal_mean_deg",
    )
    assert default_metrics(("foreground",), ("depth",)) == ()


def test_only_samples_both_runs_scored_are_compared_per_scenario_and_overall() -> None:
    face, body = scenario_range("face").start, scenario_range("full_body").start
    ids_a = np.asarray([face, face + 1, face + 2, body, body + 1, body + 2], np.int64)
    ids_b = np.asarray([face + 1, face + 2, face + 3, body, body + 1, body + 2], np.int64)
    values_a = {"sample_id": ids_a, "depth_absrel": np.asarray([9, 1, 2, 3, 4, np.nan], float)}
    values_b = {"sample_id": ids_b, "depth_absrel": np.asarray([2, 4, 9, 5, 5, 1], float)}
    c = _compare(
        "s", "a", "b", ("depth_absrel",), values_a, values_b, resamples=500, confidence=0.9, seed=0
    )
    assert (c.samples_a, c.samples_b, c.samples_both) == (6, 6, 5)
    pairs = c.pairs["depth_absrel"]  # face+1, face+2, body, body+1 (body+2 is NaN for A)
    assert list(pairs.sample_ids) == [face + 1, face + 2, body, body + 1]
    assert [r.scenario for r in c.rows] == ["face", "full_body", "all"]
    assert c.row("depth_absrel", "face").interval.n == 2
    assert c.row("depth_absrel", "face").interval.diff == pytest.approx(((2 - 1) + (4 - 2)) / 2)
    overall = c.row("depth_absrel").interval
    assert overall.n == 4 and overall.diff == pytest.approx(np.mean([1, 2, 2, 1]))
    assert overall.confidence == 0.9
    assert list(pairs.worst(2)) == [face + 2, body]  # B - A = 2, 2 (ties: lower id first)
    assert c.row("depth_absrel").verdict == "B worse"
    table = c.table()
    assert table.num_rows == 3 and table.column("samples").to_pylist() == [2, 2, 4]
    assert "| depth_absrel | all | 4 |" in c.markdown()
    text = c.render()
    assert "5 samples both runs have metrics for (A has 6, B has 6)" in text


def test_higher_is_better_metrics_flip_the_verdict_and_the_worst() -> None:
    ids = np.asarray([1, 2, 3], np.int64)
    a = {"sample_id": ids, "normal_within_30": np.asarray([0.9, 0.8, 0.7])}
    b = {"sample_id": ids, "normal_within_30": np.asarray([0.5, 0.7, 0.69])}
    c = _compare("s", "a", "b", ("normal_within_30",), a, b, resamples=200, confidence=0.95, seed=0)
    assert c.row("normal_within_30").verdict == "B worse"  # lower share under 30 degrees
    assert list(c.pairs["normal_within_30"].worst(3)) == [1, 2, 3]
