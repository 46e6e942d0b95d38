"""Ctrl-C on ``david-data infer``: the running batches stop between images, the summary is
printed with what is left, exit 130 within seconds; a rerun does exactly the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from batch_helpers import CLI, cli, write_images

from david_data.infer.results import read_results


def test_ctrl_c_stops_between_images_and_a_rerun_does_the_rest(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    rels = write_images(folder, 80)
    args = ["infer", str(folder), str(out), "--model-path", str(models["multitask"]),
            "--images-per-task", "20", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list(out.rglob("*.done"))) < 8:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
    sent = time.monotonic()
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted; rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    done = len(list(out.rglob("*.done")))
    assert 8 <= done < len(rels)  # stopped well before the end (two batches of 20 at once)
    assert f"{done} done, 0 failed, 0 already done, {len(rels) - done} not run" in stdout, stdout
    assert read_results(str(out)).num_rows == done  # the run's table holds what it did

    rerun = cli(args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(rels) - done} done, 0 failed, {done} already done" in rerun.stdout
    assert len(list(out.rglob("*.done"))) == len(rels)
