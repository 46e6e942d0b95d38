"""The infer/evaluate flows: the CLI end to end, and the same job on a real Dask cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from batch_helpers import ROOT, write_images

from david_data.exr import read_depth_exr, read_normal_exr
from david_data.infer.batch import InferSettings, plan_inference, run_plan
from david_data.infer.inputs import InputSource
from david_data.infer.results import read_results

CLI = [sys.executable, "-c", "import sys; from david_data.cli import main; sys.exit(main())"]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_infer_runs_resumes_and_reports_failures(
    tmp_path: Path, models: dict[str, Path], prefect_env: dict[str, str]
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    rels = write_images(folder, 16)
    common = [
        "--model-path",
        str(models["multitask"]),
        "--task",
        "multitask",
        "--no-progress",
        "--images-per-task",
        "8",
    ]
    first = _cli(["infer", str(folder), str(out), *common], prefect_env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "16 done, 0 failed" in first.stdout
    assert read_results(str(out)).num_rows == 16

    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    dry = _cli(["infer", str(folder), str(out), *common, "--dry-run"], prefect_env)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "already done: 16; to do: 1" in dry.stdout
    second = _cli(["infer", str(folder), str(out), *common], prefect_env)
    assert second.returncode == 1, second.stderr[-3000:]
    assert (
        "0 done, 1 failed, 16 already done" in second.stdout
        and "FAILED broken.png" in second.stdout
    )
    runs = read_results(str(out)).to_pylist()
    assert len(runs) == 17 and [r["input"] for r in runs if r["status"] == "failed"] == [
        "broken.png"
    ]
    assert len(rels) == 16

    bad_usage = _cli(
        ["infer", str(folder), str(out), "--model-path", str(models["multitask"]), "--query", "x"],
        prefect_env,
    )
    assert bad_usage.returncode == 2 and "--from-store" in bad_usage.stderr


def _read_all(out: Path) -> dict[str, object]:
    """Every output file's content: EXR pixels, PNG bytes (the markers hold run times)."""
    found: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if rel.endswith(".depth.exr"):
            found[rel] = read_depth_exr(path.read_bytes()).pixels
        elif rel.endswith(".normal.exr"):
            found[rel] = read_normal_exr(path.read_bytes()).pixels
        elif rel.endswith(".png"):
            found[rel] = path.read_bytes()
    return found


def test_dask_cluster_run_gives_identical_outputs(
    tmp_path: Path,
    models: dict[str, Path],
    prefect_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from distributed import Client, LocalCluster

    from flows.infer import run_infer

    folder = tmp_path / "in"
    write_images(folder, 20, seed=5)
    local_out, dask_out = tmp_path / "local", tmp_path / "dask"
    settings = InferSettings(  # the same job: same batches as the cluster run below
        output=str(local_out),
        model_path=str(models["multitask"]),
        task="multitask",
        vis=True,
        images_per_task=5,
    )
    local = run_plan(plan_inference(InputSource(url=str(folder)), settings))
    assert local.ok == 20

    # worker processes inherit the environment: point them at the test's Prefect server
    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        report = run_infer(
            output=str(dask_out),
            model_path=str(models["multitask"]),
            task="multitask",
            input=str(folder),
            images_per_task=5,
            dask_address=cluster.scheduler_address,
            vis=True,
            progress=False,
        )
        loaded = client.run(
            lambda: len(__import__("david_data.infer.model", fromlist=["_models"])._models)
        )
    assert (report.ok, report.failed) == (20, 0), report.failures
    assert sorted(loaded.values()) in ([0, 1], [1, 1]), loaded  # at most one model load per worker
    a, b = _read_all(local_out), _read_all(dask_out)
    assert sorted(a) == sorted(b) and len(a) == 20 * 4
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    assert cv2.imdecode(np.frombuffer(b[sorted(b)[-1]], np.uint8), cv2.IMREAD_UNCHANGED) is not None
