"""End to end with the real writers: two tiny models evaluated into runs of a store copy
(``david-data evaluate --model-path``), then compared by the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest
from compare_samples import IDS

from david_data.cli import main
from david_data.infer.testmodels import build_tiny_model
from david_data.store import open_store


def test_runs_written_by_evaluate_compare_and_draw(
    compare_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store.zarr")
    shutil.copytree(compare_store, store)
    for name, seed in (("tiny-a", 0), ("tiny-b", 1)):
        model = build_tiny_model(tmp_path / f"{name}.onnx", "multitask", seed=seed)
        args = ["evaluate", store, "--model-path", str(model), "--task", "multitask"]
        assert main([*args, "--run", name, "-o", str(tmp_path / name), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "compare"
    args = ["compare", store, "tiny-a", "tiny-b", "--metric", "depth_absrel", "--worst", "1"]
    assert main([*args, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        f"{len(IDS)} samples both runs have metrics for (A has {len(IDS)}, B has {len(IDS)})"
        in text
    )
    rows = open_store(store).query(
        "SELECT avg(b.depth_absrel - a.depth_absrel) AS d FROM metrics a JOIN metrics b "
        "USING (sample_id) WHERE a.run = 'tiny-a' AND b.run = 'tiny-b'"
    )
    assert f"{rows.column('d')[0].as_py():+.4g}" in text  # the "all" row's B-A
    for png in sorted(out.glob("*.png")):
        image = cv2.imread(str(png))
        assert image is not None and image.std() > 10, png
    assert [p.name for p in out.glob("worst_*.png")] == ["worst_depth_absrel.png"]
