"""``--prefect`` in a terminal reads cleanly: no telemetry notice, and Prefect's log lines
are printed above the live progress bars, never glued into them."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from ops_helpers import CLI, env_without_prefect_api, served_part

from david_data.synth.host import Fault, LocalHost

pytestmark = pytest.mark.slow

_ERASE_LINE = "\x1b[2K"  # what rich sends before it prints above its live display
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_in_a_terminal(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``david-data ARGS`` with a pseudo-terminal as stdin, stdout and stderr."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [CLI, *args], env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


def test_prefect_logs_print_above_the_bars_and_no_telemetry_notice(tmp_path: Path):
    served = served_part(tmp_path / "served", samples=4)
    env = {
        **env_without_prefect_api(tmp_path / "prefect-home"),
        "TMPDIR": str(tmp_path),
        "DAVID_DATA_CACHE_DIR": str(tmp_path / "cache"),
        "COLUMNS": "150",
        "TERM": "xterm",
    }
    env.pop("DO_NOT_TRACK", None)
    with LocalHost(served) as host:
        host.faults.add(Fault.rate_cap(1_000_000), times=None)  # bars live for a few seconds
        code, out = _run_in_a_terminal(
            ["mirror", str(tmp_path / "mirror"), "--parts", "0", "--base-url", host.base_url,
             "--prefect"],
            env,
            timeout=300,
        )  # fmt: skip
    assert code == 0, out
    plain = _ANSI.sub("", out)
    assert "Finished in state Completed" in plain, out
    assert "anonymous usage" not in plain and "telemetry" not in plain, out
    assert "━" in out  # there were live bars
    # Each piece of a line that rich has not erased: a log record never shares one with a bar.
    pieces = [_ANSI.sub("", p) for line in out.split("\n") for p in line.split(_ERASE_LINE)]
    log_pieces = [p for p in pieces if re.search(r"\| (INFO|WARNING|ERROR) +\|", p)]
    assert any("Task run" in p for p in log_pieces), out
    glued = [p for p in log_pieces if "━" in p]
    assert glued == [], f"log lines inside the progress bars: {glued!r}"
