"""A small store over the three scenarios with runs whose predictions are the ground truth
plus seeded noise, scored by the library's own metrics (``evaluate_sample``).

``noisy`` has more noise than ``good`` everywhere, and much more on :data:`SPOILED`, so
those are the samples where it is most worse; ``partial`` is ``noisy`` scored on some
samples only; ``normals`` is ``good``'s normals alone; ``unscored`` has no metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from compare_samples import FACE, FULL_BODY, IDS, PARTIAL, SPOILED, TASKS, UPPER_BODY  # noqa: F401

from david_data.convert.run import convert
from david_data.infer.metrics import evaluate_sample
from david_data.store import SynthHumanStore, open_store
from david_data.store.runs import RunInfo, create_run, write_metrics, write_predictions
from david_data.synth import write_part


def _scored(
    store: SynthHumanStore, noise: dict[int, float], seed: int
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Predictions of every sample of :data:`IDS` and their metric rows."""
    rng = np.random.default_rng(seed)
    pred: dict[str, list[np.ndarray]] = {t: [] for t in TASKS}
    rows = []
    for sid in IDS:
        s = store.sample(sid)
        k = np.float32(noise[sid])
        alpha = s["alpha"].astype(np.float32) / 255
        depth = np.where(s["depth"] < 60000, s["depth"], 300).astype(np.float32)
        # DAViD-like: affine in depth with a negative scale (larger = nearer), plus noise
        # sized to the figure's own depth spread (the alignment cannot remove it).
        spread = np.float32(depth[s["alpha"] > 127].std() / 100)
        d = -depth / 100 + 4 + k * 0.05 * spread * rng.standard_normal(depth.shape, np.float32)
        n = np.nan_to_num(s["normal"]) + k * 0.1 * rng.standard_normal(
            (*depth.shape, 3), np.float32
        )
        n /= np.maximum(np.linalg.norm(n, axis=2, keepdims=True), 1e-6)
        f = np.clip(alpha + k * 0.05 * rng.standard_normal(depth.shape, np.float32), 0, 1)
        outputs = {"depth": d, "normal": n, "foreground": f}
        for t in TASKS:
            pred[t].append(outputs[t])
        rows.append(
            evaluate_sample(
                outputs, alpha=s["alpha"], depth=s["depth"], normal=s["normal"],
                scenario=s["scenario"], sample_id=sid,
            ).row()
        )  # fmt: skip
    return {t: np.stack(v) for t, v in pred.items()}, rows


def _add_run(
    url: str,
    name: str,
    scored: tuple[dict[str, np.ndarray], list[dict[str, Any]]],
    ids: list[int] = IDS,
    tasks: tuple[str, ...] = TASKS,
) -> None:
    pred, rows = scored
    sha = f"{sum(map(ord, name)):064x}"
    create_run(url, RunInfo.now(name, model=f"{name}.onnx", model_sha256=sha, tasks=tasks))
    at = [IDS.index(s) for s in ids]
    write_predictions(url, name, ids, {t: pred[t][at] for t in tasks})
    keep = ["sample_id", *(m for m in rows[0] if m.split("_", 1)[0] in tasks)]
    write_metrics(url, name, pa.Table.from_pylist([{k: rows[i][k] for k in keep} for i in at]))


@pytest.fixture(scope="session")
def compare_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store and its runs good, noisy, partial, normals and unscored."""
    root = tmp_path_factory.mktemp("compare-store")
    write_part(root / "src" / "SynthHuman_0019.zip", [i for i in IDS if i < 100_000])
    write_part(root / "src" / "SynthHuman_0039.zip", [i for i in IDS if i > 100_000])
    url = str(root / "store.zarr")
    report = convert(str(root / "src"), url, shard_size=4, workers=1)
    assert report.ok, report.summary()
    store = open_store(url)
    good = _scored(store, dict.fromkeys(IDS, 1.0), seed=1)
    rough = dict.fromkeys(IDS, 1.5) | dict(zip(SPOILED, (8.0, 6.0, 4.0), strict=True))
    noisy = _scored(store, rough, seed=2)
    _add_run(url, "good", good)
    _add_run(url, "noisy", noisy)
    _add_run(url, "partial", noisy, ids=PARTIAL)
    _add_run(url, "normals", good, tasks=("normal",))
    create_run(url, RunInfo.now("unscored", model="u.onnx", model_sha256="f" * 64, tasks=TASKS))
    return url


@pytest.fixture()
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "compare"
