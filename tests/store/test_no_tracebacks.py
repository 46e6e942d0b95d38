"""Issue 15 items 8 and 9 for the SQL and store commands: Ctrl-C during a long statement
stops DuckDB and exits 130 without a traceback; results and inputs that used to end in a
traceback give one ``error:`` line (or a report naming the sample)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from david_data.cli import main

CLI = [sys.executable, "-m", "david_data"]
LONG_SQL = (
    "SELECT count(*) AS n FROM range(1000000000) a, range(1000000) b "
    "WHERE a.range + b.range = 7"
)
"""Hours of work for DuckDB: it only ends when interrupted."""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}


@pytest.mark.parametrize("command", ["query", "catalog", "show"])
def test_ctrl_c_during_a_long_statement_exits_130_without_a_traceback(
    command: str, mirror: Path, store: Path, tmp_path: Path
) -> None:
    argv = {
        "query": ["query", str(store), LONG_SQL],
        "catalog": ["catalog", LONG_SQL, "--base-url", str(mirror)],
        "show": ["show", str(store), "--query", LONG_SQL, "-o", str(tmp_path / "grid.png")],
    }[command]
    env = {**_env(), "DAVID_DATA_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [*CLI, "-v", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the statement is running once this line is logged
            seen.append(line)
            if "running SQL" in line:
                break
        else:
            pytest.fail("".join(seen))
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "interrupted" in err, err
    assert elapsed < 30, f"took {elapsed:.1f} s to stop"


@pytest.mark.parametrize("command", ["query", "catalog"])
def test_a_nested_column_as_csv_is_one_error(
    command: str,
    mirror: Path,
    store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))
    sql = "SELECT sample_id, [sample_id, 1] AS pair FROM samples"
    argv = {
        "query": ["query", str(store), sql],
        "catalog": ["catalog", sql, "--base-url", str(mirror)],
    }[command]
    out = tmp_path / "out.csv"
    assert main([*argv, "--format", "csv", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "pair" in errors[0] and "--format json or parquet" in errors[0]
    assert not out.exists()


def test_synth_onto_an_existing_file_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    for dest in (taken, taken / "below"):
        assert main(["synth", str(dest), "--parts", "sample", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert f"{taken} is a file" in err
    assert taken.read_text() == "keep me"


def test_verify_store_reports_a_sample_the_source_cannot_decode(
    mirror: Path, store: Path, tmp_path: Path
) -> None:
    """A source member that OpenCV cannot even start to decode (empty) is that sample's
    finding, not a traceback."""
    source = tmp_path / "source"
    source.mkdir()
    damaged = None
    for part in sorted(mirror.glob("*.zip")):
        with zipfile.ZipFile(part) as old, zipfile.ZipFile(source / part.name, "w") as new:
            for info in old.infolist():
                data = old.read(info)
                if damaged is None and info.filename.rsplit("/", 1)[-1].startswith("rgb_"):
                    damaged, data = info.filename, b""
                new.writestr(info, data)
    assert damaged is not None
    sample_id = int(damaged.rsplit("_", 1)[-1].split(".")[0])
    run = subprocess.run(
        [*CLI, "verify-store", str(store), "--against", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert str(sample_id) in run.stdout and "not a readable PNG" in run.stdout, run.stdout
