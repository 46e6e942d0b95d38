"""Batch inference in the library (no Prefect): outputs, resume after a kill, bad inputs,
replaced inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from batch_helpers import ROOT, infer, preview_crops, write_images

from david_data.exr import read_depth_exr, read_normal_exr
from david_data.fsutil import resolve
from david_data.infer.batch import InferSettings, plan_inference
from david_data.infer.images import decode_image
from david_data.infer.model import load_model
from david_data.infer.outputs import decode_foreground, output_names, output_stem, parse_marker
from david_data.infer.results import read_results


def _settings(
    src: str | Path, out: str | Path, model: Path, task: str = "multitask", **kw: Any
) -> InferSettings:
    kw.setdefault("images_per_task", 16)
    kw.setdefault("io_threads", 2)
    return InferSettings(input=str(src), output=str(out), model_path=str(model), task=task, **kw)


def _markers(fs: Any, root: str) -> dict[str, bytes]:
    """Relative marker name -> its content (the JSON holds the time it was written)."""
    fs.invalidate_cache()
    found = [p for p in fs.find(root) if p.endswith(".done")]
    return {p[len(root) + 1 :]: fs.cat_file(p) for p in found}


def _outputs_match_predict(
    out: Path, folder: Path, rel: str, model: Any, kinds: tuple[str, ...]
) -> None:
    expected = model.predict(decode_image((folder / rel).read_bytes(), rel))
    names = output_names(rel, kinds)
    if "depth" in kinds:
        depth = read_depth_exr((out / names["depth"]).read_bytes()).pixels
        np.testing.assert_allclose(depth, expected["depth"], rtol=0, atol=1e-5)
    if "normal" in kinds:
        normal = read_normal_exr((out / names["normal"]).read_bytes()).pixels
        np.testing.assert_allclose(normal, expected["normal"], rtol=0, atol=1e-5)
    if "foreground" in kinds:
        fg = decode_foreground((out / names["foreground"]).read_bytes())
        np.testing.assert_allclose(fg, expected["foreground"], rtol=0, atol=0.6 / 65535 + 1e-6)


@pytest.mark.parametrize("name,task", [("multitask", "multitask"), ("depth_fixed", "depth")])
def test_batched_outputs_equal_one_image_at_a_time(
    tmp_path: Path, models: dict[str, Path], name: str, task: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shapes = [
        (48, 64),
        (64, 48),
        (40, 40),
        (30, 40),
        (7, 300),
    ]  # (H, W): landscape, portrait, square, odd
    rels = []
    for i, (crop, (h, w)) in enumerate(zip(preview_crops(len(shapes)), shapes, strict=True)):
        rel = f"s{i}.png"
        cv2.imwrite(str(folder / rel), cv2.resize(crop, (w, h)))
        rels.append(rel)
    settings = _settings(folder, tmp_path / "out", models[name], task, batch_size=3, vis=True)
    report = infer(settings)
    assert (report.ok, report.failed) == (len(shapes), 0)
    model = load_model(models[name], task)
    for rel in rels:
        _outputs_match_predict(tmp_path / "out", folder, rel, model, settings.kinds[:-1])
        vis = cv2.imread(str(tmp_path / "out" / output_names(rel, ("vis",))["vis"]))
        assert vis is not None and vis.shape[1] > 0


KILL_SCRIPT = """
import sys
from david_data.engine import make_executor
from david_data.infer.batch import InferSettings, plan_inference, run_inference
src, out, model = sys.argv[1:4]
settings = InferSettings(input=src, output=out, model_path=model, task="multitask", images_per_task=16, batch_size=4, io_threads=2)
with make_executor("threads", 1) as executor:
    run_inference(plan_inference(settings), executor)
"""


def _run_and_kill(
    src: str,
    out: str,
    model: Path,
    fs: Any,
    root: str,
    kill_after: int,
    env: dict[str, str] | None = None,
    held: Callable[[int], bool] | None = None,
) -> None:
    """Start a run in a subprocess and SIGKILL it once ``kill_after`` inputs are committed
    (and, with ``held``, once ``held(pid)`` says the run is paused at a known point)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, src, out, str(model)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while len(_markers(fs, root)) < kill_after or (held and not held(proc.pid)):
            assert proc.poll() is None, (
                f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
            )  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _check_resume(
    src: str, out: str, model: Path, total: int, options: dict[str, str] | None = None
) -> None:
    """After a kill: rerun skips every committed input and leaves its files alone; a third run does nothing."""
    fs, root = resolve(out, options)
    before = _markers(fs, root)
    assert 0 < len(before) < total, f"{len(before)} of {total} committed when killed"
    done_before = {parse_marker(m)[0] for m in before}  # type: ignore[index]
    killed_rows = read_results(out, options)  # the killed run's per-batch files
    assert {output_stem(r) for r in killed_rows.column("input").to_pylist()} <= done_before

    settings = _settings(src, out, model, storage_options=options or {})
    plan = plan_inference(settings)
    assert plan.skipped == len(before) and plan.todo == total - len(before)
    report = infer(settings)
    assert (report.ok, report.failed, report.skipped) == (total - len(before), 0, len(before))

    after = _markers(fs, root)
    assert len(after) == total
    assert {k: after[k] for k in before} == before, "a finished input was recomputed"
    table = pq.read_table(
        fs.open(report.results_path.split("://", 1)[-1] if options else report.results_path, "rb")
    )
    redone = {output_stem(r) for r in table.column("input").to_pylist()}
    assert len(redone) == total - len(before)
    assert not redone & done_before
    for rel in table.column("input").to_pylist():
        for name in output_names(rel, plan.settings.kinds).values():
            assert fs.exists(f"{root}/{name}")

    again = infer(settings)
    assert (again.ok, again.failed, again.skipped, again.results_path) == (0, 0, total, None)
    assert _markers(fs, root) == after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_run_resumes_without_recomputing(
    tmp_path: Path, models: dict[str, Path], image_folder: tuple[Path, list[str]]
) -> None:
    """Killed at a known point whatever the machine's speed: input 41 of 200 is a FIFO, so
    the run waits opening it (for a writer) with the inputs before it committed or not."""
    folder, rels = image_folder
    out = tmp_path / "out"
    fs, root = resolve(str(out))
    stalled = folder / rels[40]
    image = stalled.read_bytes()
    stalled.unlink()
    os.mkfifo(stalled)
    _run_and_kill(
        str(folder), str(out), models["multitask"], fs, root, kill_after=1, held=_opening_a_fifo
    )
    stalled.unlink()
    stalled.write_bytes(image)
    _check_resume(str(folder), str(out), models["multitask"], len(rels))


def _opening_a_fifo(pid: int) -> bool:
    """True when a thread of process ``pid`` waits in the kernel for a FIFO's writer."""
    try:
        chans = [w.read_text() for w in Path(f"/proc/{pid}").glob("task/*/wchan")]
    except OSError:
        return False
    return "wait_for_partner" in chans


@pytest.mark.azurite
def test_killed_run_resumes_on_azurite(
    tmp_path: Path, models: dict[str, Path], azurite: Any, az_container: str
) -> None:
    options = azurite.storage_options
    fs, _ = resolve(az_container, options)
    local = tmp_path / "images"
    rels = write_images(local, 40, seed=3)
    fs.pipe({f"{az_container[5:]}/photos/{rel}": (local / rel).read_bytes() for rel in rels})
    src, out = f"{az_container}/photos/**/*.*", f"{az_container}/predictions"
    _, root = resolve(out, options)
    _run_and_kill(src, out, models["multitask"], fs, root, kill_after=12, env=azurite.env)
    _check_resume(src, out, models["multitask"], len(rels), options)


def test_bad_inputs_are_recorded_and_the_rest_complete(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder = tmp_path / "in"
    good = write_images(folder, 12)
    jpeg = cv2.imencode(".jpg", preview_crops(1)[0])[1].tobytes()
    png = cv2.imencode(".png", preview_crops(1)[0])[1].tobytes()
    bad = {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "cut.png": png[: len(png) // 2],
        "corrupt.png": png[:16] + bytes(range(256)) * 4,
        "text.jpg": b"this is a note, not a photo\n",
        "empty.png": b"",
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / "folder.jpg").mkdir()  # a directory that looks like an image
    report = infer(_settings(folder, tmp_path / "out", models["foreground"], "foreground"))
    assert (report.ok, report.failed) == (len(good), len(bad))
    table = read_results(str(tmp_path / "out")).to_pylist()
    failed = {r["input"]: r["error"] for r in table if r["status"] == "failed"}
    assert set(failed) == set(bad)
    assert "truncated" in failed["truncated.jpg"]
    assert "empty" in failed["empty.png"]
    for name, reason in failed.items():
        assert name in reason and len(reason) > 30, reason  # names the file and says why
    ok = {r["input"] for r in table if r["status"] == "ok"}
    assert ok == set(good)
    assert all(
        (tmp_path / "out" / output_names(rel, ("foreground",))["foreground"]).exists()
        for rel in good
    )
    # a rerun retries only the failures
    assert plan_inference(
        _settings(folder, tmp_path / "out", models["foreground"], "foreground")
    ).todo == len(bad)


def test_another_model_redoes_outputs_and_drops_the_old_markers(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder = tmp_path / "in"
    rels = write_images(folder, 6)
    out = tmp_path / "out"
    first = _settings(folder, out, models["multitask"])
    infer(first)
    second = _settings(folder, out, models["analytic"])
    plan = plan_inference(second)
    assert (plan.skipped, plan.todo) == (0, len(rels))
    infer(second)
    fs, root = resolve(str(out))
    markers = _markers(fs, root)
    assert {json.loads(v)["model_sha256"] for v in markers.values()} == {plan.job.model_sha256}
    assert len(markers) == len(rels)
    assert plan_inference(first).todo == len(rels)
    # a deleted output makes its input due again
    os.unlink(out / output_names(rels[0], ("normal",))["normal"])
    assert [i.rel for b in plan_inference(second).batches for i in b.items] == [rels[0]]


def test_inputs_that_would_share_outputs_are_rejected(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    crop = preview_crops(1)[0]
    cv2.imwrite(str(folder / "x.jpg"), crop)
    cv2.imwrite(str(folder / "x.png"), crop)
    settings = _settings(folder, tmp_path / "out", models["foreground"], "foreground")
    plan = plan_inference(settings)
    assert plan.todo == 1 and [r.input for r in plan.rejected] == ["x.png"]
    assert "x.jpg" in (plan.rejected[0].error or "")
    report = infer(settings)
    assert (report.ok, report.failed) == (1, 1)


def test_on_the_cpu_the_model_gets_one_image_per_call_unless_told(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "x.png"), preview_crops(1)[0])
    auto = plan_inference(
        _settings(folder, tmp_path / "out", models["foreground"], "foreground", device="cpu")
    )
    assert auto.settings.batch_size == 1 and "(model batch 1)" in auto.describe()
    told = plan_inference(
        _settings(
            folder, tmp_path / "out", models["foreground"], "foreground", device="cpu", batch_size=3
        )
    )
    assert told.settings.batch_size == 3
