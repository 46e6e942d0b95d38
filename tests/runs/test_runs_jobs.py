"""The jobs around runs, as a user drives them: infer into a run and evaluate into metrics
from the CLI, from Python, as Prefect flows and on a Dask cluster; the SQL that joins them;
the loader that serves predictions next to the ground truth."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from runs_helpers import StopAfter

from david_data.engine import make_executor, reset_stop
from david_data.infer.evaluate import EvalSettings, plan_evaluation, run_evaluation
from david_data.infer.into_run import RunSettings, plan_run, run_into_store
from david_data.infer.metrics import METRIC_NAMES
from david_data.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return subprocess.run(
        [sys.executable, "-m", "david_data", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _evaluate(settings: EvalSettings, progress: Any = None) -> Any:
    with make_executor("threads", 1) as ex:
        return run_evaluation(plan_evaluation(settings), ex, progress=progress)


def _metrics(store: Path, run: str) -> list[dict[str, Any]]:
    return (
        open_store(str(store))
        .query(f"SELECT * FROM metrics WHERE run = '{run}' ORDER BY sample_id")
        .to_pylist()
    )


def test_cli_infer_into_a_run_evaluate_it_and_join_the_metrics(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path
) -> None:
    store = str(run_store)
    model = ["--model-path", str(run_models["a"]), "--no-progress"]
    dry = cli("infer", "--from-store", store, *model, "--ids", "0-5", "--run", "a", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "to do: 6" in dry.stdout and not (run_store / "runs").exists()  # a plan writes nothing
    first = cli("infer", "--from-store", store, *model, "--ids", "0-5", "--run", "a")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "run a in" in first.stdout and "6 sample(s) predicted" in first.stdout
    again = cli("infer", "--from-store", store, *model, "--ids", "0-5", "--run", "a")
    assert again.returncode == 0 and "0 sample(s) predicted, 6 already there" in again.stdout

    out = tmp_path / "eval"
    scored = cli("evaluate", store, "--run", "a", "-o", str(out), "--no-progress")
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "6 sample(s) scored, 0 failed" in scored.stdout
    per_sample = pq.read_table(out / "per_sample.parquet").to_pylist()
    stored = _metrics(run_store, "a")
    assert [r["sample_id"] for r in stored] == list(range(6))
    for mine, theirs in zip(stored, per_sample, strict=True):
        assert all(mine[m] == pytest.approx(theirs[m], nan_ok=True) for m in METRIC_NAMES)

    joined = cli(
        "query",
        store,
        "SELECT s.scenario, count(*) AS n, avg(m.depth_absrel) AS absrel FROM samples s "
        "JOIN metrics m USING (sample_id) WHERE m.run = 'a' GROUP BY 1",
    )
    assert joined.returncode == 0, joined.stderr[-2000:]
    assert "face" in joined.stdout and "(1 rows)" in joined.stdout

    # --query filters on metrics: the 3 worst samples of run a go into run b
    worst = sorted(stored, key=lambda r: -r["normal_median_deg"])[:3]
    chosen = cli(
        "infer", "--from-store", store, "--model-path", str(run_models["b"]), "--no-progress",
        "--run", "b", "--query",
        "SELECT sample_id FROM metrics m WHERE m.run = 'a' "
        "ORDER BY m.normal_median_deg DESC LIMIT 3",
    )  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr[-2000:]
    assert open_store(store).covered("b").tolist() == sorted(r["sample_id"] for r in worst)
    picture = tmp_path / "worst.png"
    shown = cli(
        "show", store, "--query",
        "SELECT sample_id FROM samples s JOIN metrics m USING (sample_id) WHERE m.run = 'a' "
        "ORDER BY m.normal_median_deg DESC LIMIT 2", "-o", str(picture),
    )  # fmt: skip
    assert shown.returncode == 0 and picture.stat().st_size > 0, shown.stderr[-2000:]

    # mistakes: one error line naming the fix, exit 2
    other = cli("infer", "--from-store", store, *model, "--run", "a", "--task", "depth")
    assert other.returncode == 2 and other.stderr.count("error:") == 1, other.stderr
    unknown = cli("evaluate", store, "--run", "nope", "-o", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "runs there: a, b" in unknown.stderr, unknown.stderr
    mixed = cli("infer", "--from-store", store, str(tmp_path / "out"), *model, "--run", "a")
    assert mixed.returncode == 2 and "drop OUTPUT" in mixed.stderr
    assert "Traceback" not in other.stderr + unknown.stderr + mixed.stderr


def test_evaluate_with_a_model_writes_the_run_and_scores_as_the_direct_path(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path
) -> None:
    store = str(run_store)
    direct = _evaluate(
        EvalSettings(
            store=store,
            model_path=str(run_models["a"]),
            output=str(tmp_path / "direct"),
            into_store=False,
        )
    )
    assert not (run_store / "runs").exists()  # --no-run only reads the store
    report = _evaluate(
        EvalSettings(store=store, model_path=str(run_models["a"]), output=str(tmp_path / "run"))
    )
    assert report.failure_count == 0 and report.samples == 10
    (run,) = open_store(store).runs
    assert open_store(store).covered(run.name).tolist() == list(range(10))
    assert report.evaluation.rows == direct.evaluation.rows  # stored predictions score the same
    assert report.evaluation.summary_rows() == direct.evaluation.summary_rows()
    assert [r["sample_id"] for r in _metrics(run_store, run.name)] == list(range(10))


def test_a_stopped_evaluate_resumes_to_the_same_metrics(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path
) -> None:
    clean = tmp_path / "clean.zarr"
    shutil.copytree(run_store, clean)

    def settings(store: Path) -> EvalSettings:
        return EvalSettings(
            store=str(store),
            model_path=str(run_models["a"]),
            output=str(store) + "-eval",
            run="a",
            samples_per_task=4,
        )

    try:
        stopped = _evaluate(settings(run_store), progress=StopAfter(5))
    finally:
        reset_stop()
    assert stopped.interrupted
    assert 0 < len(open_store(str(run_store)).covered("a")) < 10
    resumed = _evaluate(settings(run_store))
    reference = _evaluate(settings(clean))
    assert resumed.failure_count == 0 and resumed.evaluation.rows == reference.evaluation.rows
    assert _metrics(run_store, "a") == _metrics(clean, "a")
    for f in ("depth", "normal", "foreground"):
        a = open_store(str(run_store)).run_view("a").read(range(10))[0][f]
        b = open_store(str(clean)).run_view("a").read(range(10))[0][f]
        assert a.tobytes() == b.tobytes(), f


def test_infer_into_a_run_on_a_dask_cluster_writes_the_same_bytes(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path, dask_cluster: str
) -> None:
    clean = tmp_path / "clean.zarr"
    shutil.copytree(run_store, clean)
    on_dask = cli(
        "infer", "--from-store", str(run_store), "--model-path", str(run_models["a"]),
        "--run", "a", "--images-per-task", "4", "--dask-address", dask_cluster, "--no-progress",
    )  # fmt: skip
    assert on_dask.returncode == 0, on_dask.stderr[-2000:]
    plan = plan_run(RunSettings(store=str(clean), model_path=str(run_models["a"]), run="a"))
    with make_executor("threads", 1) as ex:
        run_into_store(plan, ex)
    for f in ("depth", "normal", "foreground", "covered"):
        for shard in (0, 1, 2):
            name = (
                f"c/{shard}"
                if f == "covered"
                else f"c/{shard}/0/0" + ("/0" if f == "normal" else "")
            )
            path = Path("runs/a") / f / name
            assert (run_store / path).read_bytes() == (clean / path).read_bytes(), path


def test_the_flows_infer_into_a_run_and_evaluate_it(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path, prefect_harness: None
) -> None:
    from david_data.flows._executor import report_of_state
    from david_data.flows.evaluate import evaluate_flow
    from david_data.flows.infer_run import infer_run_flow

    state = infer_run_flow(
        store=str(run_store),
        model_path=str(run_models["a"]),
        run="a",
        ids="2-7",
        samples_per_task="4",
        return_state=True,
    )
    report = report_of_state(state)
    assert state.is_completed() and report.written == 6
    state = evaluate_flow(
        store=str(run_store), run="a", output=str(tmp_path / "e"), return_state=True
    )
    assert state.is_completed() and report_of_state(state).samples == 6
    assert [r["sample_id"] for r in _metrics(run_store, "a")] == list(range(2, 8))


def test_the_loader_serves_predictions_beside_the_ground_truth(
    run_store: Path, run_models: dict[str, Path]
) -> None:
    pytest.importorskip("torch")
    plan = plan_run(
        RunSettings(store=str(run_store), model_path=str(run_models["a"]), run="a", ids="0-4")
    )
    with make_executor("threads", 1) as ex:
        run_into_store(plan, ex)
    store = open_store(str(run_store))
    for workers in (0, 2):  # in this process, then through the workers' shared memory
        loader = store.loader(5, shuffle=False, runs=["a"], fields=["depth"], num_workers=workers)
        seen = {}
        for batch in loader:
            for i, sid in enumerate(batch["sample_id"].tolist()):
                seen[sid] = (batch["a/covered"][i].item(), batch["a/depth"][i].numpy())
        loader.close()
        assert sorted(seen) == list(range(10))
        for sid, (covered, depth) in seen.items():
            assert covered == (sid <= 4)
            if covered:
                np.testing.assert_array_equal(depth, store.sample(sid, run="a")["a/depth"])
            else:
                assert np.isnan(depth).all()
    with pytest.raises(Exception, match="no run 'nope'"):
        store.loader(5, runs=["nope"])
    # where= may filter on metrics
    import pyarrow as pa

    from david_data.store.runs import write_metrics

    write_metrics(str(run_store), "a", pa.table({"sample_id": [1, 3], "depth_rmse": [9.0, 1.0]}))
    worst = open_store(str(run_store)).loader(
        1, where="sample_id IN (SELECT sample_id FROM metrics WHERE depth_rmse > 5)"
    )
    assert worst.sample_ids.tolist() == [1]


def test_a_query_on_metrics_sees_the_metrics_written_since_in_this_process(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path
) -> None:
    from david_data.infer.batch import InferSettings, plan_inference

    def folder_plan(query: str) -> Any:
        return plan_inference(
            InferSettings(
                output=str(tmp_path / "out"),
                store=str(run_store),
                model_path=str(run_models["a"]),
                query=query,
            )
        )

    assert folder_plan("scenario = 'face'").total == 10  # the store was opened and queried
    _evaluate(
        EvalSettings(
            store=str(run_store),
            model_path=str(run_models["a"]),
            output=str(tmp_path / "e"),
            run="a",
            query="sample_id < 4",
        )
    )
    assert folder_plan("SELECT sample_id FROM metrics WHERE run = 'a'").total == 4
    rescored = _evaluate(
        EvalSettings(
            store=str(run_store),
            run="a",
            output=str(tmp_path / "e2"),
            query="SELECT sample_id FROM metrics m WHERE m.depth_rmse IS NOT NULL",
        )
    )
    assert rescored.samples == 4
