"""`prefect deploy --all` against a real Prefect server, with a process worker: a triggered
inference deployment runs to completion, and a mirror run that ends Completed (only such
a run) triggers a convert of its own destination."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
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
def prefect_server(prefect_env, tmp_path_factory: pytest.TempPathFactory, repo_root):
    """The session's Prefect server (the test harness's; it runs the automation services
    too), seen from a fresh PREFECT_HOME: no server of this module's own to start."""
    return {
        **prefect_env,
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DAVID_DATA_ROOT": str(repo_root),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "david_data",
    }


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


@pytest.fixture(scope="module")
def deployed(prefect_server) -> dict:
    """``prefect deploy --all`` of deployments/prefect.yaml into a process work pool."""
    _prefect(prefect_server, "work-pool", "create", "david-data", "--type", "process")
    _prefect(prefect_server, "deploy", "--all", timeout=300)
    return dict(asyncio.run(_deployments(prefect_server)))


def test_deploy_all_registers_every_deployment_and_a_worker_runs_inference(
    prefect_server, deployed, tmp_path
):
    env = prefect_server
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


async def _runs_of(env: dict[str, str], deployment_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )


async def _set_parameters(env: dict[str, str], deployment_id, parameters: dict) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        async with get_client() as client:
            await client.update_deployment(deployment_id, DeploymentUpdate(parameters=parameters))


def _wait_final(env: dict[str, str], run_id, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        state, _ = asyncio.run(_flow_run_state(env, run_id))
        if state is not None and state.is_final():
            return state
        assert time.monotonic() < deadline, f"flow run {run_id} still {state}"
        time.sleep(1)


def test_the_trigger_converts_each_mirror_into_a_store_of_its_own() -> None:
    """Issue 15 item 11: the store a triggered convert writes follows from the mirror run
    (its ``dest``), as the server renders the trigger's templates; never the deployment's
    default store, which unrelated mirrors would share."""
    import yaml
    from prefect.server.utilities.user_templates import render_user_template_sync

    spec = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deployments" / "prefect.yaml").read_text()
    )
    (convert,) = [d for d in spec["deployments"] if d["name"] == "convert-synthhuman"]
    (trigger,) = convert["triggers"]

    def rendered(dest: str) -> dict[str, str]:
        context = {"flow_run": {"parameters": {"dest": dest}}}
        return {k: render_user_template_sync(v, context) for k, v in trigger["parameters"].items()}

    assert rendered("/data/a") == {"source_url": "/data/a", "store_url": "/data/a-store"}
    assert rendered("az://c/b/")["store_url"] == "az://c/b-store"
    default = convert["parameters"]  # a manual run with the defaults: the same pairing
    assert rendered(default["source_url"])["store_url"] == default["store_url"]


def test_a_completed_mirror_run_triggers_a_convert_of_its_own_dest_a_failed_one_does_not(
    prefect_server, deployed, tmp_path
):
    from david_data.store import open_store
    from david_data.synth import SynthOptions, write_part
    from david_data.synth.host import LocalHost

    env = {**prefect_server, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    mirror = deployed["mirror/mirror-synthhuman"]
    convert = deployed["convert/convert-synthhuman"]
    default_store = tmp_path / "default-store"
    asyncio.run(
        _set_parameters(
            env,
            convert.id,
            {"source_url": "/nonexistent", "store_url": str(default_store), "workers": 1},
        )
    )
    served = tmp_path / "served"
    served.mkdir()
    write_part(served / "SynthHuman_0000.zip", [0, 1], SynthOptions(folder="SynthHuman"))
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "david-data"],
        cwd=env["DAVID_DATA_ROOT"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with LocalHost(served) as host:
            # Part 1 is not served: that run ends Failed and must not trigger convert.
            bad = asyncio.run(
                _trigger(
                    env,
                    mirror.id,
                    {"dest": str(tmp_path / "bad"), "parts": "0-1", "base_url": host.base_url},
                )
            )
            state = _wait_final(env, bad)
            assert state.is_failed(), state
            assert "SynthHuman_0001.zip" in (state.message or "")

            # A good run, started as a user would (`--param parts=0`: a number for a string).
            good_dest = tmp_path / "good"
            started = _prefect(
                env, "deployment", "run", "mirror/mirror-synthhuman",
                "--param", f"dest={good_dest}", "--param", "parts=0",
                "--param", f"base_url={host.base_url}",
            )  # fmt: skip
            good = started.stdout.split("UUID:")[1].split()[0]
            state = _wait_final(env, good)
            assert state.is_completed(), f"{state}\n{(tmp_path / 'worker.log').read_text()[-3000:]}"

        deadline = time.monotonic() + 120
        while not (runs := asyncio.run(_runs_of(env, convert.id))):
            assert time.monotonic() < deadline, "no convert run was triggered"
            time.sleep(1)
        state = _wait_final(env, runs[0].id)
        # No sleep to let a wrong trigger show up: the server evaluates events in the order
        # they arrive, and the failed run's last event arrived before the good run started,
        # so it was evaluated before the good run's completion triggered the run above.
        runs = asyncio.run(_runs_of(env, convert.id))
        assert [r.parameters["source_url"] for r in runs] == [str(good_dest)]
        store = f"{good_dest}-store"  # follows from the mirror run, not the default store
        assert [r.parameters["store_url"] for r in runs] == [store]
        assert state.is_completed(), f"{state}\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
        assert open_store(store).sample_ids.tolist() == [0, 1]
        assert not default_store.exists()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
