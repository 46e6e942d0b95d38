"""``verify-store`` as an engine job (issue 15, item 6): every sample is checked or named
as not checked (exit 1), the same report on a Dask cluster as in this process, and
Ctrl-C names the samples left and exits 130."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from convert_helpers import SHARD, Mirror

from david_data.cli import main
from david_data.convert.run import convert

CLI = [sys.executable, "-c", "import sys; from david_data.cli import main; sys.exit(main())"]
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


class Lines:
    """Reads a process's stderr on a thread; ``wait_for`` blocks until a line holds a text."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of stream
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in line for line in self.lines) or "" in self.lines,
                timeout=timeout,
            )
        assert found and any(text in line for line in self.lines), "".join(self.lines)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def open_writer_once_read(fifo: Path, proc: subprocess.Popen[str], timeout: float = 60) -> int:
    """The write end of ``fifo``, opened once the job has opened it for reading (the
    event: the unit checking that sample is waiting for its bytes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            assert proc.poll() is None, "verify-store ended before reading the sample"
            assert time.monotonic() < deadline, "verify-store never read the sample"
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def test_ctrl_c_names_the_samples_left_unchecked_and_exits_130(
    mirror: Mirror, tmp_path: Path
) -> None:
    # An extracted folder of part 0 (samples 0-9) and its store; one member of sample 2
    # becomes a FIFO: the job pauses there until this test writes the member's bytes.
    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(mirror.path / "SynthHuman_0000.zip") as archive:
        archive.extractall(extracted)
    target = tmp_path / "store.zarr"
    assert convert(str(extracted), str(target), shard_size=SHARD, workers=1).ok
    (member,) = extracted.rglob("rgb_0000002.png")
    data = member.read_bytes()
    member.unlink()
    os.mkfifo(member)

    proc = subprocess.Popen(
        [*CLI, "verify-store", str(target), "--against", str(extracted), "--workers", "1",
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=LOCAL_ENV,
    )  # fmt: skip
    try:
        stderr = Lines(proc)
        fd = open_writer_once_read(member, proc)  # samples 0 and 1 are checked by now
        proc.send_signal(signal.SIGINT)
        stderr.wait_for("SIGINT: stopping")
        os.write(fd, data)
        os.close(fd)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = stderr.text()
    assert proc.returncode == 130, out + err
    assert "2 samples checked, 0 difference(s), 8 NOT checked" in out, out
    assert "8 sample(s) NOT checked (not checked: the run was interrupted): ids 2-9" in out, out
    assert "interrupted; rerun" in err
    assert "Traceback" not in err


def test_the_verify_store_flow_ends_failed_naming_the_samples_not_checked(
    prefect_harness: None, mirror: Mirror, store: Path, tmp_path: Path
) -> None:
    from flows._executor import report_of_state
    from flows.verify_store import verify_store_flow

    state = verify_store_flow(store_url=str(store), source_url=str(mirror.path), return_state=True)
    assert state.is_completed() and report_of_state(state).checked == 29
    src = partial_source(mirror, tmp_path / "src", ("SynthHuman_0000.zip",))
    state = verify_store_flow(store_url=str(store), source_url=str(src), return_state=True)
    assert state.is_failed()
    report = report_of_state(state)
    assert report.checked == 10 and len(report.unchecked) == 19, report.summary()
