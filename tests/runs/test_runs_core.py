"""The run interface of a store: create a run, write predictions, read them back (this
package, zarr-python, tensorstore), coverage, metrics as an SQL table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from david_data.errors import ConfigError, StoreError
from david_data.store import open_store
from david_data.store.runs import (
    FIELD_SHAPES,
    RunInfo,
    create_run,
    write_metrics,
    write_predictions,
)

TASKS = ("depth", "normal", "foreground")


def _info(name: str = "tiny-a", sha: str = "a" * 64, **kw: object) -> RunInfo:
    return RunInfo.now(name, model="tiny.onnx", model_sha256=sha, tasks=TASKS, **kw)  # type: ignore[arg-type]


def _predictions(ids: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f: rng.standard_normal((len(ids), *FIELD_SHAPES[f])).astype(np.float32) for f in TASKS}


def test_predictions_round_trip_and_uncovered_samples_are_marked(run_store: Path) -> None:
    url = str(run_store)
    create_run(url, _info())
    ids = [1, 2, 5, 9]  # three shards, none whole
    pred = _predictions(ids)
    write_predictions(url, "tiny-a", ids, pred)
    store = open_store(url)
    assert [r.name for r in store.runs] == ["tiny-a"]
    assert store.run("tiny-a").model_sha256 == "a" * 64
    assert store.covered("tiny-a").tolist() == ids
    for i, sid in enumerate(ids):
        got = store.sample(sid, run="tiny-a")
        assert got["tiny-a/covered"] is True
        for f in TASKS:
            assert got[f"tiny-a/{f}"].dtype == np.float32
            assert got[f"tiny-a/{f}"].tobytes() == pred[f][i].tobytes(), (sid, f)
        assert got["depth"].shape == (512, 384)  # the ground truth is still there
    bare = store.sample(3, run="tiny-a")
    assert bare["tiny-a/covered"] is False
    assert not [k for k in bare if k.startswith("tiny-a/") and k != "tiny-a/covered"]


def test_writing_more_of_a_shard_keeps_what_it_held_and_rewrites_are_idempotent(
    run_store: Path,
) -> None:
    url = str(run_store)
    create_run(url, _info())
    first = _predictions([0, 1], seed=1)
    write_predictions(url, "tiny-a", [0, 1], first)
    second = _predictions([2, 3], seed=2)
    write_predictions(url, "tiny-a", [2, 3], second)
    write_predictions(url, "tiny-a", [2, 3], second)  # again: the same bytes
    files = sorted(p for p in (run_store / "runs").rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    write_predictions(url, "tiny-a", [2, 3], second)
    assert {p: p.read_bytes() for p in files} == before
    assert not list((run_store / "runs").rglob("*.tmp"))
    store = open_store(url)
    assert store.covered("tiny-a").tolist() == [0, 1, 2, 3]
    arrays, covered = store.run_view("tiny-a").read([0, 1, 2, 3, 4])
    assert covered.tolist() == [True, True, True, True, False]
    assert arrays["normal"][:2].tobytes() == first["normal"].tobytes()
    assert arrays["normal"][2:4].tobytes() == second["normal"].tobytes()
    assert np.isnan(arrays["depth"][4]).all()  # not covered: NaN, never zeros


def test_zarr_python_and_tensorstore_read_a_runs_arrays(run_store: Path) -> None:
    import tensorstore as ts
    import zarr

    url = str(run_store)
    create_run(url, _info())
    ids = [0, 5, 6]
    pred = _predictions(ids)
    write_predictions(url, "tiny-a", ids, pred)
    group = zarr.open_group(url, mode="r")
    for f in TASKS:
        path = run_store / "runs" / "tiny-a" / f
        array = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}, read=True
        ).result()
        via_ts = np.stack([array[i].read().result() for i in ids])
        via_zarr = np.stack([group[f"runs/tiny-a/{f}"][i] for i in ids])
        assert via_ts.tobytes() == pred[f].tobytes(), f
        assert via_zarr.tobytes() == pred[f].tobytes(), f
        assert np.isnan(array[1].read().result()).all()  # not covered: the fill value NaN
    covered = group["runs/tiny-a/covered"]
    assert np.flatnonzero(covered[:12]).tolist() == ids
    via_ts = ts.open(
        {
            "driver": "zarr3",
            "kvstore": {"driver": "file", "path": str(run_store / "runs/tiny-a/covered")},
        },
        read=True,
    ).result()
    assert np.flatnonzero(via_ts[:12].read().result()).tolist() == ids


def test_a_run_of_another_model_is_refused_and_unknown_runs_are_named(run_store: Path) -> None:
    url = str(run_store)
    create_run(url, _info())
    create_run(url, _info())  # the same model and selection: nothing to do
    with pytest.raises(StoreError, match="never overwritten"):
        create_run(url, _info(sha="b" * 64))
    create_run(url, _info(query="sample_id < 4"))  # the same model on more samples: recorded
    assert open_store(url).run("tiny-a").more == ({"query": "sample_id < 4", "ids": None},)
    with pytest.raises(StoreError, match="holds depth, normal, foreground, not depth"):
        create_run(url, RunInfo.now("tiny-a", model="x", model_sha256="a" * 64, tasks=["depth"]))
    with pytest.raises(StoreError, match=r"no run 'nope' \(runs there: tiny-a\)"):
        open_store(url).run("nope")
    with pytest.raises(ConfigError, match="run name"):
        _info(name="Bad Name")
    assert open_store(url).run("tiny-a").model_sha256 == "a" * 64


def test_metrics_are_a_table_joinable_with_samples(run_store: Path) -> None:
    url = str(run_store)
    store = open_store(url)
    empty = store.query("SELECT * FROM metrics")
    assert empty.num_rows == 0 and "depth_absrel" in empty.column_names
    create_run(url, _info("run-a"))
    create_run(url, _info("run-b", sha="b" * 64))
    write_metrics(
        url, "run-a", pa.table({"sample_id": [0, 1, 5], "depth_absrel": [0.1, 0.3, float("nan")]})
    )
    write_metrics(url, "run-a", pa.table({"sample_id": [1], "depth_absrel": [0.5]}))  # replaces
    write_metrics(url, "run-b", pa.table({"sample_id": [0], "normal_median_deg": [12.0]}))
    store = open_store(url)
    rows = store.query(
        "SELECT s.scenario, avg(m.depth_absrel) AS a, count(*) AS n FROM samples s "
        "JOIN metrics m USING (sample_id) WHERE m.run = 'run-a' GROUP BY 1"
    ).to_pylist()
    assert rows == [{"scenario": "face", "a": pytest.approx(0.3), "n": 3}]  # NaN stored as NULL
    worst = store.subset(
        "SELECT sample_id FROM metrics m WHERE run = 'run-a' ORDER BY m.depth_absrel DESC "
        "NULLS LAST LIMIT 2"
    )
    assert worst.sample_ids.tolist() == [1, 0]
    b = store.query("SELECT * FROM metrics WHERE run = 'run-b'").to_pylist()
    assert b[0]["normal_median_deg"] == 12.0 and b[0]["depth_absrel"] is None
    with pytest.raises(ConfigError, match="refused"):
        store.query("SELECT * FROM read_parquet('runs/*/metrics/*.parquet')")


@pytest.mark.azurite
def test_a_run_on_azure_blob_storage(runs_base_store: Path, azurite, az_container: str) -> None:  # type: ignore[no-untyped-def]
    import zarr

    from david_data.convert.run import convert

    options = azurite.storage_options
    url = f"{az_container}/store.zarr"
    report = convert(
        str(runs_base_store.parent / "src"), url, shard_size=4, workers=1, storage_options=options
    )
    assert report.ok, report.summary()
    create_run(url, _info(), options)
    pred = _predictions([1, 2, 5])
    write_predictions(url, "tiny-a", [1, 2, 5], pred, options)
    more = _predictions([3], seed=3)
    write_predictions(url, "tiny-a", [3], more, options)  # the shard grows: 1, 2 are kept
    write_metrics(url, "tiny-a", pa.table({"sample_id": [1, 3], "depth_rmse": [1.0, 3.0]}), options)
    store = open_store(url, options)
    assert store.covered("tiny-a").tolist() == [1, 2, 3, 5]
    assert store.sample(2, run="tiny-a")["tiny-a/normal"].tobytes() == pred["normal"][1].tobytes()
    assert store.sample(3, run="tiny-a")["tiny-a/depth"].tobytes() == more["depth"][0].tobytes()
    assert store.sample(4, run="tiny-a")["tiny-a/covered"] is False
    total = store.query(
        "SELECT sum(m.depth_rmse) AS t FROM samples JOIN metrics m USING (sample_id)"
    ).to_pylist()
    assert total == [{"t": 4.0}]
    group = zarr.open_group(url, mode="r", storage_options=options)
    assert group["runs/tiny-a/depth"][5].tobytes() == pred["depth"][2].tobytes()
