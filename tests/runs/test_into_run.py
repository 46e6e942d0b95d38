"""Inference into a store's run: the predictions are the model's, a rerun does nothing, a
stopped run resumes to the same bytes, a changed model file makes a new run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runs_helpers import StopAfter

from david_data.engine import make_executor, reset_stop
from david_data.errors import StoreError
from david_data.infer.into_run import RunSettings, plan_run, run_into_store
from david_data.store import open_store
from david_data.store.runs import FIELDS


def _run(settings: RunSettings, progress: Any = None, workers: int = 1) -> Any:
    plan = plan_run(settings)
    with make_executor("threads", workers) as ex:
        return plan, run_into_store(plan, ex, progress=progress)


def _run_bytes(store: Path, run: str) -> dict[str, bytes]:
    """Every file of a run but run.json (its date differs), by relative path."""
    root = store / "runs" / run
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "run.json"
    }


def test_infer_into_a_run_holds_the_models_outputs_and_a_rerun_does_nothing(
    run_store: Path, run_models: dict[str, Path]
) -> None:
    from david_data.infer.model import load_model
    from david_data.infer.runtime import postprocess, preprocess

    settings = RunSettings(
        store=str(run_store), model_path=str(run_models["a"]), ids="1-6", samples_per_task=3
    )
    plan, report = _run(settings, workers=2)
    assert report.failure_count == 0 and report.written == 6, report.summary()
    name = plan.job.run
    assert name == f"tiny-a-{plan.job.model_sha256[:8]}"
    store = open_store(str(run_store))
    info = store.run(name)
    assert info.tasks == FIELDS and info.selection == {"query": None, "ids": "1-6"}
    assert info.model == "tiny-a.onnx" and info.version
    assert store.covered(name).tolist() == [1, 2, 3, 4, 5, 6]
    model = load_model(str(run_models["a"]), "multitask", device="cpu")
    for sid in (1, 4):
        sample = store.sample(sid, run=name)
        chw, pad = preprocess(np.ascontiguousarray(sample["rgb"][..., ::-1]))
        raw = model.run(chw[None])
        want = postprocess({k: v[0] for k, v in raw.items()}, pad)
        for f in FIELDS:
            np.testing.assert_array_equal(sample[f"{name}/{f}"], want[f], err_msg=f)
    assert store.sample(0, run=name)[f"{name}/covered"] is False
    before = _run_bytes(run_store, name)
    again, report = _run(settings)
    assert again.units == () and report.written == 0 and report.already == 6
    assert _run_bytes(run_store, name) == before


def test_a_stopped_run_resumes_to_the_same_bytes_as_an_uninterrupted_one(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path
) -> None:
    clean = tmp_path / "clean.zarr"
    shutil.copytree(run_store, clean)
    settings = RunSettings(
        store=str(run_store), model_path=str(run_models["a"]), samples_per_task=4
    )
    try:
        plan, stopped = _run(settings, progress=StopAfter(3))
    finally:
        reset_stop()
    assert stopped.interrupted and 0 < stopped.written < 10, stopped.summary()
    name = plan.job.run
    held = open_store(str(run_store)).covered(name).tolist()
    assert len(held) == stopped.written
    # a kill between a shard's objects and its commit marker: the marker is lost
    (run_store / "runs" / name / "covered" / "c" / "0").unlink()
    stale = run_store / "runs" / name / "depth" / "c" / "0" / "0" / "0.0badc0de.tmp"
    stale.write_bytes(b"half a shard")  # and a temporary a killed write left behind
    _, resumed = _run(settings)
    assert resumed.written == 10 - len(held) + len([s for s in held if s < 4])
    assert open_store(str(run_store)).covered(name).tolist() == list(range(10))
    assert not stale.exists()
    _run(RunSettings(store=str(clean), model_path=str(run_models["a"]), samples_per_task=4))
    assert _run_bytes(run_store, name) == _run_bytes(clean, name)


def test_a_changed_model_file_makes_a_new_run_and_never_overwrites(
    run_store: Path, run_models: dict[str, Path], tmp_path: Path
) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(run_models["a"], model)
    first, _ = _run(RunSettings(store=str(run_store), model_path=str(model), ids="0-3"))
    old = _run_bytes(run_store, first.job.run)
    shutil.copy(run_models["b"], model)  # same path, other weights
    second, report = _run(RunSettings(store=str(run_store), model_path=str(model), ids="0-3"))
    assert second.job.run != first.job.run and report.written == 4
    assert _run_bytes(run_store, first.job.run) == old
    store = open_store(str(run_store))
    assert [r.name for r in store.runs] == sorted([first.job.run, second.job.run])
    a = store.sample(2, runs=[first.job.run, second.job.run])
    assert not np.array_equal(a[f"{first.job.run}/depth"], a[f"{second.job.run}/depth"])
    with pytest.raises(StoreError, match="never overwritten"):
        plan_run(RunSettings(store=str(run_store), model_path=str(model), run=first.job.run))
