"""The compare flow under the session's Prefect harness: its result, files and artifact."""

from __future__ import annotations

from pathlib import Path

from compare_samples import IDS


def test_flow_compares_writes_the_pictures_and_publishes_the_table(
    compare_store: str, tmp_path: Path, prefect_harness: None
) -> None:
    from prefect.artifacts import Artifact

    from david_data.flows.compare import compare_flow

    out = tmp_path / "out"
    state = compare_flow(
        store=compare_store,
        run_a="good",
        run_b="noisy",
        metrics=["normal_mean_deg"],
        output=str(out),
        worst=1,
        resamples=300,
        return_state=True,
    )
    assert state.is_completed(), state
    comparison = state.result()
    assert comparison.metrics == ("normal_mean_deg",) and comparison.samples_both == len(IDS)
    assert comparison.row("normal_mean_deg").verdict == "B worse"
    assert sorted(p.name for p in out.iterdir()) == [
        "bars_normal_mean_deg.png",
        "comparison.csv",
        "histogram_normal_mean_deg.png",
        "worst_normal_mean_deg.png",
    ]
    artifact = Artifact.get("compare")
    assert artifact is not None
    assert f"| normal_mean_deg | all | {len(IDS)} |" in str(artifact.data)  # type: ignore[union-attr]  # sync call


def test_flow_with_an_unknown_run_fails_naming_the_runs(
    compare_store: str, prefect_harness: None
) -> None:
    from david_data.flows.compare import compare_flow

    state = compare_flow(store=compare_store, run_a="good", run_b="nope", return_state=True)
    assert state.is_failed()
    assert "runs there: good, noisy" in str(state.result(raise_on_failure=False))


def test_the_query_flow_joins_samples_with_metrics(
    compare_store: str, tmp_path: Path, prefect_harness: None
) -> None:
    import pyarrow.parquet as pq
    from prefect.artifacts import Artifact

    from david_data.flows.query import query_flow
    from david_data.store import open_store

    sql = (
        "SELECT s.scenario, m.run, count(*) AS n, round(avg(m.depth_absrel), 9) AS absrel "
        "FROM samples s JOIN metrics m USING (sample_id) GROUP BY 1, 2 ORDER BY 1, 2"
    )
    out = tmp_path / "joined.parquet"
    state = query_flow(store=compare_store, sql=sql, output=str(out), return_state=True)
    assert state.is_completed(), state
    expected = open_store(compare_store).query(sql)
    assert state.result() == expected.to_pylist() and expected.num_rows >= 3
    assert pq.read_table(out).equals(expected)
    artifact = Artifact.get("query")
    assert artifact is not None and "face" in str(artifact.data)  # type: ignore[union-attr]  # sync call
