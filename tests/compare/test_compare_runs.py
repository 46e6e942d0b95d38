"""``david-data compare`` and ``compare_runs`` on a real store with real runs and metrics."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow.csv as pacsv
import pytest
from compare_samples import IDS, PARTIAL, SPOILED

from david_data.cli import main
from david_data.compare import compare_runs
from david_data.compare.plots import worst_picture
from david_data.errors import ConfigError, StoreError
from david_data.store import open_store

HEADLINES = ("depth_absrel", "normal_mean_deg", "foreground_sad")


def _paired_means(store: str, a: str, b: str, metric: str) -> dict[str, tuple[int, float]]:
    """n and mean(B) - mean(A) per scenario and "all", by DuckDB over the metrics table."""
    rows = (
        open_store(store)
        .query(
            f"SELECT s.scenario, count(*) AS n, avg(mb.{metric}) - avg(ma.{metric}) AS diff "
            f"FROM metrics ma JOIN metrics mb USING (sample_id) JOIN samples s USING (sample_id) "
            f"WHERE ma.run = '{a}' AND mb.run = '{b}' "
            f"AND ma.{metric} IS NOT NULL AND mb.{metric} IS NOT NULL "
            "GROUP BY ROLLUP (s.scenario)"
        )
        .to_pylist()
    )
    return {r["scenario"] or "all": (r["n"], r["diff"]) for r in rows}


def test_the_difference_is_the_paired_mean_difference_and_the_interval_holds_it(
    compare_store: str,
) -> None:
    c = compare_runs(compare_store, "good", "partial")
    assert c.metrics == HEADLINES
    assert (c.samples_a, c.samples_b, c.samples_both) == (len(IDS), len(PARTIAL), len(PARTIAL))
    for metric in HEADLINES:
        expected = _paired_means(compare_store, "good", "partial", metric)
        got = {r.scenario: r.interval for r in c.rows if r.metric == metric}
        assert set(got) == set(expected) == {"face", "full_body", "upper_body", "all"}
        for scenario, (n, diff) in expected.items():
            interval = got[scenario]
            assert interval.n == n
            assert interval.diff == pytest.approx(diff, rel=1e-9, abs=1e-12)
            assert interval.low <= interval.diff <= interval.high
        assert c.row(metric).verdict == "B worse", c.render()  # more noise everywhere


def test_a_run_against_itself_differs_by_zero_with_a_zero_width_interval(
    compare_store: str,
) -> None:
    c = compare_runs(compare_store, "good", "good", metrics=["depth_rmse", "normal_within_30"])
    assert c.metrics == ("depth_rmse", "normal_within_30")
    for row in c.rows:
        i = row.interval
        assert (i.diff, i.low, i.high) == (0.0, 0.0, 0.0), row
        assert row.verdict == "no clear difference"


def test_the_worst_samples_are_those_where_b_is_most_worse(compare_store: str) -> None:
    c = compare_runs(compare_store, "good", "noisy")
    for metric in HEADLINES:
        by_duckdb = open_store(compare_store).query(
            f"SELECT sample_id FROM metrics ma JOIN metrics mb USING (sample_id) "
            f"WHERE ma.run = 'good' AND mb.run = 'noisy' "
            f"ORDER BY mb.{metric} - ma.{metric} DESC LIMIT 3"
        )
        worst = c.pairs[metric].worst(3)
        assert worst.tolist() == by_duckdb.column("sample_id").to_pylist()
        assert set(worst.tolist()) == set(SPOILED), metric  # where the noise was raised


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} does not decode"
    return image


def _not_blank(image: np.ndarray) -> None:
    packed = image.astype(np.int32) @ np.asarray([1 << 16, 1 << 8, 1], np.int32)
    assert len(np.unique(packed)) > 50 and image.std() > 10


def test_cli_prints_the_table_and_writes_charts_and_worst_panels(
    compare_store: str, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", compare_store, "good", "noisy", "-o", str(out_dir), "--worst", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{len(IDS)} samples both runs have metrics for" in out
    assert "95% CI" in out and "B worse" in out
    for metric in HEADLINES:
        assert out.count(metric) >= 4  # three scenarios and all
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted(
        ["comparison.csv"]
        + [f"{k}_{m}.png" for k in ("histogram", "bars", "worst") for m in HEADLINES]
    )
    table = pacsv.read_csv(out_dir / "comparison.csv")
    assert table.num_rows == 3 * 4 and set(table.column("metric").to_pylist()) == set(HEADLINES)

    store = open_store(compare_store)
    c = compare_runs(store, "good", "noisy")
    for metric in HEADLINES:
        histogram, bars = (
            _png(out_dir / f"histogram_{metric}.png"),
            _png(out_dir / f"bars_{metric}.png"),
        )
        assert histogram.shape[1] > 4 * 440 and bars.shape[1] > 4 * 2 * 86  # 4 groups
        worst = _png(out_dir / f"worst_{metric}.png")
        for image in (histogram, bars, worst):
            _not_blank(image)
        # One row of 512-pixel tiles; its RGB tile is the worst sample's image (below the
        # panel title, the row title and the tile label).
        assert 512 < worst.shape[0] < 2 * 512
        first = int(c.pairs[metric].worst(1)[0])
        tile = worst[34 + 34 + 30 :][:512, :384]
        assert np.array_equal(tile, store.sample(first)["rgb"][..., ::-1]), metric
    # One more sample, one more row of the same height.
    metric = HEADLINES[-1]
    samples = [store.sample(int(s), runs=["good", "noisy"]) for s in c.pairs[metric].worst(2)]
    two = worst_picture(c, metric, samples)
    assert two.shape[0] - _png(out_dir / f"worst_{metric}.png").shape[0] == 14 + 34 + 30 + 512
    second = two[34 + (34 + 30 + 512) + 14 + 34 + 30 :][:512, :384]
    assert np.array_equal(second, samples[1]["rgb"][..., ::-1])


def test_only_shared_tasks_are_compared_and_metrics_must_be_shared(compare_store: str) -> None:
    c = compare_runs(compare_store, "good", "normals")
    assert c.metrics == ("normal_mean_deg",)
    with pytest.raises(ConfigError, match="depth_rmse need a task both runs predicted"):
        compare_runs(compare_store, "good", "normals", metrics=["depth_rmse"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["good", "nope"],
            "has no run 'nope' (runs there: good, noisy, normals, partial, unscored)",
        ),
        (["good", "unscored"], "run unscored has no metrics"),
        (["good", "noisy", "--metric", "depth_bogus"], "unknown metric(s) depth_bogus; choose among"),
        (["good", "noisy", "--confidence", "95"], "--confidence must lie between 0 and 1"),
        (["good", "noisy", "--resamples", "0"], "--resamples must be at least 1"),
    ],
)
def test_cli_errors_are_one_line_naming_the_fix(
    compare_store: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code: object
    try:
        code = main(["compare", compare_store, *args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err


def test_an_output_that_is_a_file_is_refused_before_any_work(
    compare_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("x")
    assert main(["compare", compare_store, "good", "noisy", "-o", str(tmp_path / "taken")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_unknown_run_in_python_is_a_store_error(compare_store: str) -> None:
    with pytest.raises(StoreError, match="runs there"):
        compare_runs(compare_store, "nope", "good")


def test_a_worst_sample_without_stored_predictions_is_named(compare_store: str) -> None:
    store = open_store(compare_store)
    c = compare_runs(store, "good", "noisy", metrics=["foreground_sad"], resamples=10)
    sid = int(c.pairs["foreground_sad"].worst(1)[0])
    with pytest.raises(
        StoreError,
        match=f"run good has metrics but no stored foreground prediction for sample {sid}",
    ):
        worst_picture(c, "foreground_sad", [store.sample(sid)])  # the ground truth alone
