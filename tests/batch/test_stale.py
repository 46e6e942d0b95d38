"""Stale outputs: completion is keyed on the model and on the input as it is now (size and
mtime, or ETag / a content hash on object stores), so a replaced input is computed again,
an unchanged one is not, and outputs whose input went away are counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import fsspec
import numpy as np
import pytest
from batch_helpers import infer, preview_crops

from david_data.engine import JobReport
from david_data.exr import read_depth_exr
from david_data.fsutil import resolve
from david_data.infer.batch import InferSettings, plan_inference
from david_data.infer.model import load_model
from david_data.infer.outputs import output_names, parse_marker


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(buf.tobytes())


def _state(out: Path) -> dict[str, bytes]:
    """Every file under OUTPUT but the results tables: name -> bytes."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "_runs" not in p.parts
    }


def test_replaced_inputs_are_recomputed_unchanged_ones_are_not(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    crops = preview_crops(7, seed=11)
    for name, crop in zip(("a.jpg", "b.png", "cam.jpg", "gone.png", "sub/c.jpg"), crops, strict=False):
        _write(folder / name, crop)
    settings = InferSettings(
        input=str(folder), output=str(out), model_path=str(models["multitask"]), task="multitask"
    )
    first = infer(settings)
    assert (first.ok, first.failed) == (5, 0) and isinstance(first, JobReport)
    before = _state(out)

    _write(folder / "a.jpg", crops[5])  # same name, another picture
    (folder / "cam.jpg").unlink()  # cam.jpg -> cam.png: same outputs, another input
    _write(folder / "cam.png", crops[6])
    (folder / "gone.png").unlink()

    plan = plan_inference(settings)
    todo = sorted(i.rel for b in plan.batches for i in b.items)
    assert todo == ["a.jpg", "cam.png"]
    assert (plan.skipped, plan.orphaned) == (2, 1)
    report = infer(settings)
    assert (report.ok, report.failed, report.skipped, report.orphaned) == (2, 0, 2, 1)
    assert "1 output set(s) under OUTPUT match no input" in report.summary()

    after = _state(out)
    unchanged = [k for k in before if k.startswith(("b.", "sub/c.", "gone."))]
    assert len(unchanged) == 3 * 4  # depth, normal, foreground and the marker of each
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    model = load_model(models["multitask"], "multitask")
    for rel in ("a.jpg", "cam.png"):
        expected = model.predict(cv2.imread(str(folder / rel)))["depth"]
        got = read_depth_exr(after[output_names(rel, ("depth",))["depth"]]).pixels
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        markers = [k for k in after if (m := parse_marker(k)) and m[0] == rel.rsplit(".", 1)[0]]
        assert len(markers) == 1, markers  # the old input's marker is gone
        assert json.loads(after[markers[0]])["input"].endswith(rel)
    assert infer(settings).ok == 0  # and now everything is done


def test_markers_of_the_older_form_are_redone_once(tmp_path: Path, models: dict[str, Path]) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    _write(folder / "a.png", preview_crops(1)[0])
    settings = InferSettings(
        input=str(folder), output=str(out), model_path=str(models["foreground"]), task="foreground"
    )
    infer(settings)
    (marker,) = [p for p in out.glob("*.done")]
    stem, sha, key = parse_marker(marker.name)  # type: ignore[misc]
    old = out / f"{stem}.{sha}.done"  # NAME.<sha>.done, written before inputs had keys
    marker.rename(old)
    assert parse_marker(old.name) == (stem, sha, None)
    assert plan_inference(settings).todo == 1
    infer(settings)
    assert [p.name for p in out.glob("*.done")] == [marker.name]


@pytest.mark.parametrize("fs_name", ["memory"])
def test_object_store_inputs_replaced_in_place_are_recomputed(
    fs_name: str, tmp_path: Path, models: dict[str, Path]
) -> None:
    fs = fsspec.filesystem(fs_name)
    base = f"/stale-{tmp_path.name}"
    png = [cv2.imencode(".png", c)[1].tobytes() for c in preview_crops(3, seed=2)]
    fs.pipe({f"{base}/in/x.png": png[0], f"{base}/in/y.png": png[1]})
    settings = InferSettings(
        input=f"{fs_name}://{base}/in/**/*.png",
        output=f"{fs_name}://{base}/out",
        model_path=str(models["foreground"]),
        task="foreground",
    )
    assert infer(settings).ok == 2
    fs.pipe_file(f"{base}/in/x.png", png[2])  # replaced under the same name
    plan = plan_inference(settings)
    assert [i.rel for b in plan.batches for i in b.items] == ["x.png"]
    assert plan.skipped == 1


@pytest.mark.azurite
def test_blobs_replaced_on_azurite_are_recomputed(
    tmp_path: Path, models: dict[str, Path], azurite: Any, az_container: str
) -> None:
    options = azurite.storage_options
    fs, _ = resolve(az_container, options)
    png = [cv2.imencode(".png", c)[1].tobytes() for c in preview_crops(3, seed=4)]
    fs.pipe({f"{az_container[5:]}/in/x.png": png[0], f"{az_container[5:]}/in/y.png": png[1]})
    settings = InferSettings(
        input=f"{az_container}/in/*.png",
        output=f"{az_container}/out",
        model_path=str(models["foreground"]),
        task="foreground",
        storage_options=options,
    )
    assert infer(settings).ok == 2
    fs.pipe_file(f"{az_container[5:]}/in/x.png", png[2])
    fs.invalidate_cache()
    plan = plan_inference(settings)
    assert ([i.rel for b in plan.batches for i in b.items], plan.skipped) == (["x.png"], 1)
