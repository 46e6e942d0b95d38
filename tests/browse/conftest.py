"""A small store of all three scenarios with two runs (predictions and real metrics), and
a headless Chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from browse_stores import SHOUTY_MODEL, RunStore
from browser_helpers import Browser

from david_data.convert.run import convert
from david_data.infer.metrics import evaluate_sample
from david_data.store import open_store
from david_data.synth import SynthOptions, write_part

PARTS = {
    "SynthHuman_0000.zip": range(0, 4),
    "SynthHuman_0025.zip": range(125000, 125004),
    "SynthHuman_0050.zip": range(250000, 250004),
}
SHARD = 4

def _predict(sample: dict, sid: int, fields: tuple[str, ...], seed: int) -> dict[str, np.ndarray]:
    """Ground truth spoilt by a sample-dependent amount: the samples differ in error."""
    rng = np.random.default_rng(seed * 1_000_003 + sid)
    amount = 0.02 + 0.1 * ((sid * 7919 + seed) % 11) / 10
    out: dict[str, np.ndarray] = {}
    if "depth" in fields:
        depth = np.where(sample["depth"] < 65504, sample["depth"], 300.0).astype(np.float32)
        out["depth"] = (-depth / 100 + rng.normal(0, amount, depth.shape)).astype(np.float32)
    if "normal" in fields:
        n = sample["normal"] + rng.normal(0, amount * 3, sample["normal"].shape)
        out["normal"] = (n / np.linalg.norm(n, axis=2, keepdims=True)).astype(np.float32)
    if "foreground" in fields:
        fg = sample["alpha"] / 255.0 + rng.normal(0, amount, sample["alpha"].shape)
        out["foreground"] = np.clip(fg, 0, 1).astype(np.float32)
    return out


def add_run(
    store: Path, name: str, model: str, fields: tuple[str, ...], ids: list[int], seed: int
) -> None:
    """Write run ``name``'s predictions of ``ids`` and their metrics into ``store``."""
    from david_data.store.runs import RunInfo, create_run, write_metrics, write_predictions

    create_run(
        str(store),
        RunInfo.now(name, model=model, model_sha256=f"{seed:02x}" * 32, tasks=fields),
    )
    opened = open_store(str(store))
    predictions: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    rows = []
    for sid in ids:
        sample = opened.sample(sid)
        outputs = _predict(sample, sid, fields, seed)
        for f in fields:
            predictions[f].append(outputs[f])
        scored = evaluate_sample(
            outputs,
            alpha=sample["alpha"],
            depth=sample["depth"],
            normal=sample["normal"],
            scenario=sample["scenario"],
            sample_id=sid,
        )
        rows.append(scored.row())
    write_predictions(str(store), name, ids, {f: np.stack(v) for f, v in predictions.items()})
    table = pa.Table.from_pylist(rows).drop_columns(["scenario"])
    write_metrics(str(store), name, table)


def make_store(root: Path) -> tuple[Path, list[int]]:
    mirror = root / "mirror"
    for name, ids in PARTS.items():
        write_part(mirror / name, ids, SynthOptions(pixel_type="float"))
    store = root / "store.zarr"
    report = convert(str(mirror), str(store), shard_size=SHARD, workers=1)
    assert report.ok, report.summary()
    return store, sorted(i for ids in PARTS.values() for i in ids)


@pytest.fixture(scope="session")
def plain_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """A store without runs."""
    return make_store(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="session")
def run_store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    store, ids = make_store(tmp_path_factory.mktemp("runs"))
    add_run(store, "full", SHOUTY_MODEL, ("depth", "normal", "foreground"), ids, seed=1)
    add_run(store, "half", "depth-only.onnx", ("depth",), ids[::2], seed=2)
    return RunStore(path=store, ids=ids, full="full", half="half")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    page = Browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield page
    finally:
        page.close()
