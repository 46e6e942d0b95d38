"""Helpers for the operations tests: processes of a CLI run, a part served slowly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from david_data.synth import SynthOptions, write_part

BIN = Path(sys.executable).parent
CLI = str(BIN / "david-data")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` s for ``pids`` to end; return those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def served_part(folder: Path, samples: int = 4) -> Path:
    """One SynthHuman part (``SynthHuman_0000.zip``) in ``folder``, for a local host."""
    folder.mkdir(parents=True, exist_ok=True)
    write_part(folder / "SynthHuman_0000.zip", range(samples), SynthOptions(folder="SynthHuman"))
    return folder


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``david-data ARGS`` in a process group of its own (as a terminal would start it)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def env_without_prefect_api(home: Path) -> dict[str, str]:
    """The environment with no Prefect API configured (no URL, an empty Prefect home)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_PROFILE")}
    env["PREFECT_HOME"] = str(home)
    return env
