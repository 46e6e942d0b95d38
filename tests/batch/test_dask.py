"""``infer`` on a Dask cluster started from the shell (``dask scheduler`` + ``dask worker``
in another working directory), driven by the CLI with relative paths from the client's
own directory: outputs land where the client asked and equal a local run's; a worker
killed mid-run costs nothing but time; a model the workers cannot read is one error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from batch_helpers import CLI, cli, write_images

from david_data.exr import read_depth_exr, read_normal_exr
from david_data.infer.results import read_results

HANG_GUARD = 120.0
"""Seconds after which a wait counts as a hang (not a speed requirement)."""


def _read_all(out: Path) -> dict[str, object]:
    """Every output file's content: EXR pixels, PNG bytes (markers hold write times)."""
    found: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if rel.endswith(".depth.exr"):
            found[rel] = read_depth_exr(path.read_bytes()).pixels
        elif rel.endswith(".normal.exr"):
            found[rel] = read_normal_exr(path.read_bytes()).pixels
        elif rel.endswith(".png") and "_runs" not in rel:
            found[rel] = path.read_bytes()
        elif rel.endswith(".done"):
            found[rel] = b"marker"
    return found


def _same(a: dict[str, object], b: dict[str, object]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert np.array_equal(a[key], b[key]), key  # type: ignore[arg-type]
        else:
            assert a[key] == b[key], key


def _client_dir(tmp_path: Path, models: dict[str, Path], count: int) -> Path:
    """The user's working directory: images in ./in, the model in ./model.onnx."""
    client = tmp_path / "client"
    write_images(client / "in", count, seed=5)
    shutil.copy(models["multitask"], client / "model.onnx")
    return client


def test_cluster_run_with_relative_paths_writes_where_the_client_asked(
    tmp_path: Path, models: dict[str, Path], dask_cluster: str
) -> None:
    client = _client_dir(tmp_path, models, 20)
    common = ["--model-path", "model.onnx", "--images-per-task", "5", "--vis", "--no-progress"]
    local = cli(["infer", "in", "local", *common], cwd=client)
    assert local.returncode == 0, local.stderr[-3000:]
    remote = cli(["infer", "in", "rel/out", *common, "--dask-address", dask_cluster], cwd=client)
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert "20 done, 0 failed" in remote.stdout
    assert f"Dask cluster {dask_cluster}" in remote.stderr  # it did run there
    a, b = _read_all(client / "local"), _read_all(client / "rel" / "out")
    assert len(a) == 20 * 5
    _same(a, b)
    rows = read_results(str(client / "rel" / "out")).to_pylist()
    assert {r["depth"].rsplit("/rel/out/", 1)[0] for r in rows} == {str(client)}


def _waiting_on_a_fifo(group: int) -> bool:
    """True when a thread of process group ``group`` is blocked opening a FIFO (the kernel
    waits for a writer: ``wait_for_partner``)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            chans = [w.read_text() for w in stat.parent.glob("task/*/wchan")]
        except (OSError, ValueError, IndexError):
            continue
        if "wait_for_partner" in chans:
            return True
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_mid_run_costs_only_time(
    tmp_path: Path, models: dict[str, Path], dask_cluster_factory: Any
) -> None:
    """The kill lands mid-unit whatever the machine's speed: one input is a FIFO, so the
    worker that opens it waits there (for a writer). The test swaps the real image in,
    kills that worker, and the unit is done again on the other one."""
    cluster = dask_cluster_factory(2)
    client = _client_dir(tmp_path, models, 24)
    out = client / "out"
    stalled = sorted(p for p in (client / "in").rglob("*") if p.is_file())[5]
    image = stalled.read_bytes()
    stalled.unlink()
    os.mkfifo(stalled)
    proc = subprocess.Popen(
        [
            *CLI,
            "infer",
            "in",
            "out",
            "--model-path",
            "model.onnx",
            "--images-per-task",
            "2",
            "--no-progress",
            "--dask-address",
            cluster.address,
        ],
        cwd=client,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not (held := [w for w in cluster.workers if _waiting_on_a_fifo(w.pid)]):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no worker opened the stalled input"
            time.sleep(0.05)
        swap = stalled.with_name("swap")
        swap.write_bytes(image)
        swap.replace(stalled)  # (the held open waits on the FIFO, not on the name)
        cluster.kill_worker(held[0])
        stdout, stderr = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert "24 done, 0 failed" in stdout, stdout
    assert len(list(out.rglob("*.done"))) == 24
    assert len(list(out.rglob("*.depth.exr"))) == 24


def test_a_model_the_workers_cannot_read_is_one_error_naming_the_worker(
    tmp_path: Path, models: dict[str, Path], dask_cluster_factory: Any
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start workers as another user")
    cluster = dask_cluster_factory(1, user=65534)  # 'nobody' cannot read this test's files
    client = _client_dir(tmp_path, models, 2)
    proc = cli(
        ["infer", "in", "out", "--model-path", "model.onnx", "--dask-address", cluster.address],
        cwd=client,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[-1].startswith("error: Dask worker tcp://127.0.0.1:"), lines
    assert f"cannot read model file {client / 'model.onnx'}" in lines[-1], lines
    assert not list((client / "out").rglob("*.done"))
