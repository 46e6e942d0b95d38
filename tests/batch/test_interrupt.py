"""Ctrl-C on ``david-data infer``: the running batches stop between images, the summary is
printed with what is left, exit 130; a rerun does exactly the rest, and its outputs equal
an uninterrupted run's.

The run is paused at a known point whatever the machine's speed: the read of one input
(early in the first unit) waits until the test lets it go. The test sends SIGINT once that
read has begun and lets it finish only after the job has taken the stop request. (A FIFO
cannot stand in for the input: fsspec seeks every file it opens.) The CLI runs in this
process, in the main thread, as ``david-data`` does: the SIGINT is a real signal."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from batch_helpers import infer, write_images

from david_data.cli import main
from david_data.engine import stop_requested
from david_data.exr import read_depth_exr, read_normal_exr
from david_data.infer import inputs
from david_data.infer.batch import InferSettings
from david_data.infer.results import read_results

HANG_GUARD = 120.0
"""Seconds after which a wait counts as a hang (not a speed requirement)."""


def test_ctrl_c_stops_between_images_and_a_rerun_does_the_rest(
    tmp_path: Path,
    models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    rels = write_images(folder, 80)
    stalled = rels[3]  # early in the first unit of 20: the rest of that unit is never run
    reading, release = threading.Event(), threading.Event()
    read = inputs._FileReader.read

    def held_read(self: Any, item: inputs.InputItem) -> np.ndarray:
        if item.rel == stalled:
            reading.set()
            assert release.wait(HANG_GUARD), "the test never released the stalled read"
        return read(self, item)

    def interrupt() -> None:
        if reading.wait(HANG_GUARD):
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to the job's process
            deadline = time.monotonic() + HANG_GUARD
            while not stop_requested() and time.monotonic() < deadline:
                time.sleep(0.01)
        release.set()  # the stalled read ends after the stop request

    monkeypatch.setattr(inputs._FileReader, "read", held_read)
    for name in [k for k in os.environ if k.startswith("PREFECT_API")]:
        monkeypatch.delenv(name)  # the CLI runs the engine here
    args = [
        "infer",
        str(folder),
        str(out),
        "--model-path",
        str(models["multitask"]),
        "--images-per-task",
        "20",
        "--no-progress",
    ]
    helper = threading.Thread(target=interrupt, daemon=True)
    helper.start()
    code = main(args)
    helper.join(HANG_GUARD)
    stdout, stderr = capsys.readouterr()
    assert reading.is_set(), "the stalled input was never read"
    assert code == 130, stderr[-3000:]
    assert "SIGINT: stopping after the running work units checkpoint" in stderr
    assert "interrupted; rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    done = len(list(out.rglob("*.done")))
    assert 1 <= done < len(rels) - 10  # the stalled unit stopped after its running images
    assert f"{done} done, 0 failed, 0 already done, {len(rels) - done} not run" in stdout, stdout
    assert read_results(str(out)).num_rows == done  # the run's table holds what it did

    monkeypatch.setattr(inputs._FileReader, "read", read)
    assert main(args) == 0
    rerun = capsys.readouterr().out
    assert f"{len(rels) - done} done, 0 failed, {done} already done" in rerun, rerun
    assert len(list(out.rglob("*.done"))) == len(rels)
    fresh = tmp_path / "fresh"
    infer(
        InferSettings(
            input=str(folder),
            output=str(fresh),
            task="multitask",
            model_path=str(models["multitask"]),
            images_per_task=20,
        )
    )
    assert outputs(out) == outputs(fresh)  # resumed = uninterrupted


def outputs(out: Path) -> dict[str, bytes]:
    """Every output: EXR pixels, PNG bytes (not the run records or markers: they hold times)."""
    found: dict[str, bytes] = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if rel.endswith(".depth.exr"):
            found[rel] = read_depth_exr(path.read_bytes()).pixels.tobytes()
        elif rel.endswith(".normal.exr"):
            found[rel] = read_normal_exr(path.read_bytes()).pixels.tobytes()
        elif rel.endswith(".png") and "_runs" not in rel:
            found[rel] = path.read_bytes()
    assert found
    return found
