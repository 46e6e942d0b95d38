"""``verify-store`` as an engine job (issue 15, item 6): every sample is checked or named
as not checked (exit 1), the same report on a Dask cluster as in this process, and
Ctrl-C (or any stop) names the samples left and exits 130."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from convert_helpers import SHARD, Mirror
from process_helpers import interrupt_when

from david_data.cli import main
from david_data.convert.verify_store import (
    VerifyStoreSettings,
    check_samples,
    plan_verify_store,
    run_verify_store,
)
from david_data.engine import make_executor, request_stop, reset_stop

CLI = [sys.executable, "-m", "david_data"]
LOCAL_ENV = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}


def partial_source(mirror: Mirror, folder: Path, names: tuple[str, ...]) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(mirror.path / name, folder / name)
    return folder


def test_a_source_lacking_parts_names_every_sample_it_cannot_check(
    mirror: Mirror, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The store holds 29 samples of four parts; SRC has two of those parts.
    src = partial_source(mirror, tmp_path / "src", ("SynthHuman_0000.zip", "SynthHuman_0019.zip"))
    capsys.readouterr()
    code = main(["verify-store", str(store), "--against", str(src)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "18 samples checked, 0 difference(s), 11 NOT checked" in out, out
    assert (
        "6 sample(s) NOT checked (part SynthHuman_0001.zip is not in SRC): ids 5000-5005" in out
    ), out
    assert (
        "5 sample(s) NOT checked (part SynthHuman_0040.zip is not in SRC): ids 200000-200004"
        in out
    ), out


def test_a_dask_cluster_gives_the_same_report_as_this_process(
    mirror: Mirror,
    store: Path,
    tmp_path: Path,
    dask_cluster: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A report with differences and samples not checked: a flipped byte in sample 5's
    # rgb chunk (shard 1 holds samples 4-7), and SRC lacking part 40.
    copy = tmp_path / "client" / "copy.zarr"
    shutil.copytree(store, copy)
    shard = copy / "rgb" / "c" / "1" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    offset, nbytes = (int(v) for v in np.frombuffer(bytes(data[: 16 * SHARD]), "<u8")[2:4])
    data[offset + nbytes // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    names = ("SynthHuman_0000.zip", "SynthHuman_0001.zip", "SynthHuman_0019.zip")
    src = partial_source(mirror, tmp_path / "client" / "src", names)

    capsys.readouterr()
    args = ["verify-store", str(copy), "--against", str(src), "--no-progress"]
    local_code = main([*args, "--workers", "1"])
    local = capsys.readouterr().out
    assert local_code == 1 and "24 samples checked" in local and "sample 5: " in local, local
    # Relative paths from the client's folder: the cluster runs elsewhere (its own cwd).
    remote = subprocess.run(
        [*CLI, "verify-store", "copy.zarr", "--against", "src", "--no-progress",
         "--dask-address", dask_cluster],
        capture_output=True, text=True, timeout=300, cwd=tmp_path / "client", env=LOCAL_ENV,
    )  # fmt: skip
    assert remote.returncode == 1, remote.stdout + remote.stderr
    assert f"Dask cluster {dask_cluster}" in remote.stderr  # it did run there
    assert remote.stdout == local


def test_ctrl_c_names_the_samples_left_unchecked_and_exits_130(
    store: Path, mirror: Mirror, tmp_path: Path, dask_cluster_factory: Any
) -> None:
    cluster = dask_cluster_factory(workers=1)  # one worker, one thread
    # The job pauses at a known point: the cluster's only thread is held until the
    # signal was handled, so no sample is checked before it.
    with cluster.busy(tmp_path):
        code, out, err = interrupt_when(
            [*CLI, "verify-store", str(store), "--against", str(mirror.path), "--no-progress",
             "--dask-address", cluster.address],
            f"29 samples in 5 units on Dask cluster {cluster.address}",
            env=LOCAL_ENV,
        )  # fmt: skip
    assert code == 130, out + err
    assert "0 samples checked, 0 difference(s), 29 NOT checked" in out, out
    assert (
        "29 sample(s) NOT checked (not checked: the run was interrupted): "
        "ids 0-9,5000-5005,98036-98043,200000-200004" in out
    ), out
    assert "interrupted; rerun" in err and "Traceback" not in err


def test_a_stop_between_samples_leaves_the_rest_named_unchecked(
    mirror: Mirror, store: Path
) -> None:
    plan = plan_verify_store(
        VerifyStoreSettings(store_url=str(store), source_url=str(mirror.path), workers=2)
    )
    assert [len(u.samples) for u in plan.units] == [8, 2, 6, 8, 5]

    class StopAfterFirstUnit:
        """Progress that asks for a stop when the first unit's result arrives."""

        def task(self, description: str, total: float | None = None, unit: str = "") -> Any:
            return self

        def advance(self, amount: float = 1) -> None:
            request_stop()

        def finish(self, status: str = "done") -> None:
            self.status = status

    try:
        with make_executor("threads", 1) as executor:
            report = run_verify_store(plan, executor, progress=StopAfterFirstUnit())
    finally:
        reset_stop()
    assert report.interrupted and not report.ok
    assert report.checked >= 8 and report.checked + len(report.unchecked) == 29
    assert {sid for sid, why in report.unchecked} >= set(range(200000, 200005))
    assert {why for _, why in report.unchecked} == {"not checked: the run was interrupted"}
    # A unit stopped between samples names the samples it did not reach.
    try:
        request_stop()
        result = check_samples(plan.units[0])
    finally:
        reset_stop()
    assert result.checked == () and [sid for sid, _ in result.not_checked] == list(range(8))


def test_the_verify_store_flow_ends_failed_naming_the_samples_not_checked(
    prefect_harness: None, mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    from david_data.flows._executor import report_of_state
    from david_data.flows.verify_store import verify_store_flow

    state = verify_store_flow(store_url=str(store), source_url=str(mirror.path), return_state=True)
    assert state.is_completed() and report_of_state(state).checked == 29
    src = partial_source(mirror, tmp_path / "src", ("SynthHuman_0000.zip",))
    state = verify_store_flow(store_url=str(store), source_url=str(src), return_state=True)
    assert state.is_failed()
    report = report_of_state(state)
    assert report.checked == 10 and len(report.unchecked) == 19, report.summary()
