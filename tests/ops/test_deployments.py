"""`prefect deploy --all` against a real Prefect server, and a process worker running a
triggered inference deployment to completion."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
EXPECTED = {
    "mirror/mirror-synthhuman",
    "convert/convert-synthhuman",
    "infer/infer-incremental",
    "evaluate/evaluate-synthhuman",
}


def _prefect(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        cwd=env["DAVID_DATA_ROOT"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, get_free_port, repo_root):
    home = tmp_path_factory.mktemp("prefect-home")
    port = get_free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DAVID_DATA_ROOT": str(repo_root),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "david_data",
    }
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(
                f"prefect server did not start:\n{(home / 'server.log').read_text()[-3000:]}"
            )
        time.sleep(0.5)
    try:
        yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


async def _deployments(env: dict[str, str]):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        async with get_client() as client:
            deployments = await client.read_deployments()
            flows = {f.id: f.name for f in await client.read_flows()}
            return [(f"{flows[d.flow_id]}/{d.name}", d) for d in deployments]


async def _trigger(env: dict[str, str], deployment_id, parameters: dict[str, str]):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        async with get_client() as client:
            run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
            return run.id


async def _flow_run_state(env: dict[str, str], run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
            )
            return run.state, logs


def test_deploy_all_registers_every_deployment_and_a_worker_runs_inference(
    prefect_server, tmp_path
):
    env = prefect_server
    _prefect(env, "work-pool", "create", "david-data", "--type", "process")
    _prefect(env, "deploy", "--all", timeout=300)

    deployed = dict(asyncio.run(_deployments(env)))
    assert set(deployed) == EXPECTED
    nightly = deployed["infer/infer-incremental"]
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
    assert [s.active for s in nightly.schedules] == [False]
    assert nightly.work_pool_name == "david-data"
    assert "infer" in nightly.tags

    # A triggered run over a small folder, picked up by a real process worker.
    from david_data.infer.testmodels import build_tiny_model

    model = tmp_path / "tiny-depth.onnx"
    build_tiny_model(model, "depth")
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["a.png", "b.jpg", "sub/c.png"]
    for name in names:
        cv2.imwrite(str(images / name), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    output = tmp_path / "out"
    run_id = asyncio.run(
        _trigger(
            env,
            nightly.id,
            {
                "input": str(images),
                "output": str(output),
                "model_path": str(model),
                "task": "depth",
            },
        )
    )
    worker = subprocess.run(
        [str(BIN / "prefect"), "worker", "start", "--pool", "david-data", "--run-once"],
        cwd=env["DAVID_DATA_ROOT"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    state, logs = asyncio.run(_flow_run_state(env, run_id))
    deadline = time.monotonic() + 30  # the server writes logs in batches
    while not any(log.name.startswith("david_data") for log in logs) and time.monotonic() < deadline:
        time.sleep(1)
        state, logs = asyncio.run(_flow_run_state(env, run_id))
    assert state is not None and state.is_completed(), (
        f"{state}\n{worker.stdout[-3000:]}\n{worker.stderr[-3000:]}"
    )
    # The library's own log records reach the run's logs in Prefect (PREFECT_LOGGING_EXTRA_LOGGERS).
    assert any(log.name.startswith("david_data") for log in logs), (
        sorted({log.name for log in logs}),
        worker.stderr,
    )
    for name in names:
        stem = name.rsplit(".", 1)[0]
        assert (output / f"{stem}.depth.exr").stat().st_size > 0
    assert list((output / "_runs").glob("*.parquet"))
