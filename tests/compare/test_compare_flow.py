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
