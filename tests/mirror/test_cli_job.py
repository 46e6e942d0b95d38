"""The ``mirror`` and ``verify`` commands as a user runs them (real subprocesses of the
CLI): Ctrl-C/SIGTERM, every user error as one line, the repair paths, small things."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mirror_helpers import FAST, PARTS, flip_byte, member_data_offset, same_bytes

from david_data.engine import JobReport
from david_data.mirror import MirrorSettings, mirror, plan_mirror, verify_mirror
from david_data.mirror.manifest import PartRecord, compact_ranges, load_manifest
from david_data.mirror.verify import coverage
from david_data.synth.generator import SynthOptions, write_part
from david_data.synth.host import Fault, LocalHost

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "david_data"]


def _env() -> dict[str, str]:
    """The user's environment without a Prefect server or proxies: the in-process engine."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.pop("PREFECT_API_URL", None)
    return env


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT
    )


def _one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]


# --- Ctrl-C and SIGTERM ----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_cleanly_and_a_rerun_completes(
    tmp_path: Path, served: Path, host: LocalHost, sig: int
) -> None:
    """Issue 9 acceptance 2 for mirror: the group gets the signal as from a terminal;
    exit 130 without waiting for the downloads, with the summary and the rerun hint, no process left, and a
    rerun gives files identical to the served ones."""
    host.faults.add(Fault.rate_cap(150_000), times=None)
    dest = tmp_path / "dest"
    args = [*CLI, "mirror", str(dest), "--base-url", host.base_url, "--parts", "0-3"]
    proc = subprocess.Popen(
        [*args, "--no-progress", "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,  # its own process group, like a job in a terminal
    )
    deadline = time.monotonic() + 60
    while host.stats.total_bytes < 300_000:
        assert proc.poll() is None and time.monotonic() < deadline, "the download did not start"
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    # It ends without waiting for the downloads: parts are left unfinished (below).
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "mirror of" in out and "unfinished" in out
    assert "rerun the same command to resume" in err
    assert "Traceback" not in err
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of the group is left
    assert not (dest / ".mirror.lock").exists()
    assert list(dest.glob("*.state")), "an unfinished part keeps its resume state"
    host.faults.clear()
    again = cli("mirror", str(dest), "--base-url", host.base_url, "--parts", "0-3", "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    for name in PARTS:
        assert same_bytes(served / name, dest / name)
    assert not list(dest.glob("*.state")) and not (dest / ".mirror.lock").exists()


# --- one line, exit 2, no traceback -------------------------------------------------------


def _readonly(folder: Path, args: list[str]) -> subprocess.CompletedProcess[str] | None:
    """Run the CLI with ``folder`` read-only: a private read-only bind mount as root
    (root ignores permissions), a chmod otherwise; None when neither can be had."""
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return cli(*args)
    if shutil.which("unshare") is None:
        return None
    quoted = " ".join(f"'{a}'" for a in [*CLI, *args])
    script = f"mount --bind -o ro '{folder}' '{folder}' && exec {quoted}"
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=ROOT,
    )
    if "mount" in run.stderr and "error:" not in run.stderr:
        return None  # no mount namespace here
    return run


def test_read_only_destination(tmp_path: Path, host: LocalHost) -> None:
    folder = tmp_path / "ro"
    run = _readonly(folder, ["mirror", str(folder / "mirror"), "--base-url", host.base_url])
    if run is None:
        pytest.skip("cannot make a read-only folder here")
    line = _one_error_line(run)
    assert "cannot write to" in line and "read-only file system" in line


def _manifest(dest: Path, text: str) -> None:
    dest.mkdir()
    (dest / "manifest.json").write_text(text)


CASES = {
    "mirror into a file": (
        lambda d: d.write_text("x"),
        ["mirror", "{dest}", "--base-url", "{base}"],
        "is a file",
    ),
    "verify a file": (lambda d: d.write_text("x"), ["verify", "{dest}"], "is a file"),
    "verify a missing folder": (lambda d: None, ["verify", "{dest}"], "does not exist"),
    "verify a folder without manifest": (
        lambda d: d.mkdir(),
        ["verify", "{dest}"],
        "no manifest.json",
    ),
    "verify a manifest that is not JSON": (
        lambda d: _manifest(d, "{not json"),
        ["verify", "{dest}"],
        "is not valid JSON",
    ),
    "verify a manifest with a list of parts": (
        lambda d: _manifest(d, '{"parts": []}'),
        ["verify", "{dest}"],
        'a list under "parts"',
    ),
    "mirror onto a manifest of the wrong shape": (
        lambda d: _manifest(d, '{"parts": {"SynthHuman_0000.zip": {"size": "big"}}}'),
        ["mirror", "{dest}", "--base-url", "{base}"],
        "not a mirror manifest",
    ),
    "refused connection": (
        lambda d: None,
        ["mirror", "{dest}", "--base-url", "http://127.0.0.1:{closed}/"],
        "connection was refused",
    ),
    "dry run against a host that does not answer": (
        lambda d: None,
        ["mirror", "{dest}", "--dry-run", "--base-url", "http://127.0.0.1:{closed}/"],
        "check --base-url",
    ),
    "unresolvable host": (
        lambda d: None,
        ["mirror", "{dest}", "--base-url", "http://no-such-host.invalid/"],
        "does not resolve",
    ),
    "bad --parts": (lambda d: None, ["mirror", "{dest}", "--parts", "60"], "out of range"),
    "bad --jobs": (lambda d: None, ["mirror", "{dest}", "--jobs", "0"], "--jobs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_errors_are_one_line_with_exit_2(
    case: str, tmp_path: Path, host: LocalHost, get_free_port
) -> None:  # type: ignore[no-untyped-def]
    setup, args, expected = CASES[case]
    dest = tmp_path / "dest"
    setup(dest)
    values = {"dest": str(dest), "base": host.base_url, "closed": str(get_free_port())}
    line = _one_error_line(cli(*(a.format(**values) for a in args)))  # (one line: no retry)
    assert expected in line, line  # (test_first_contact.py counts the connection attempts)
    if "host" in case or "refused" in case:
        assert "check --base-url" in line and "rerun" not in line
        assert not dest.exists()


# --- repair ------------------------------------------------------------------------------


def test_acceptance_3_corrupt_part_verify_mirror_verify(
    tmp_path: Path, served: Path, host: LocalHost
) -> None:
    dest = tmp_path / "dest"
    base = ["--base-url", host.base_url, "--parts", "0-1", "--no-progress"]
    assert cli("mirror", str(dest), *base).returncode == 0
    flip_byte(dest / PARTS[1], member_data_offset(dest / PARTS[1], "depth_0005000.exr") + 9)
    found = cli("verify", str(dest))
    assert found.returncode == 1
    assert f"CORRUPT {PARTS[1]}" in found.stdout and "depth_0005000.exr" in found.stdout
    assert f"fetches {PARTS[1]} again" in found.stdout
    assert PARTS[1] in json.loads((dest / "manifest.json").read_text())["suspect"]
    repaired = cli("mirror", str(dest), *base)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert "1 fetched and verified, 1 already there" in repaired.stdout
    for name in PARTS[:2]:
        assert same_bytes(served / name, dest / name)
    final = cli("verify", str(dest))
    assert final.returncode == 0, final.stdout
    assert "suspect" not in json.loads((dest / "manifest.json").read_text())


def test_reverify_rechecks_present_parts_first(
    tmp_path: Path, served: Path, host: LocalHost
) -> None:
    dest = tmp_path / "dest"
    settings = MirrorSettings(dest=str(dest), parts=PARTS[:2], base_url=host.base_url, policy=FAST)
    assert not mirror(settings).failed
    flip_byte(dest / PARTS[0], member_data_offset(dest / PARTS[0], "rgb_0000001.png") + 77)
    assert [p.action for p in plan_mirror(settings).parts] == ["skip", "skip"]
    recheck = MirrorSettings(**{**settings.__dict__, "reverify": True})
    assert [p.action for p in plan_mirror(recheck).parts] == ["recheck", "recheck"]
    report = mirror(recheck)
    assert isinstance(report, JobReport) and not report.failed and report.failure_count == 0
    assert [o.status for o in report.outcomes] == ["ok", "intact"]
    assert report.outcomes[1].note == "re-checked: intact" and report.outcomes[0].bytes_fetched
    for name in PARTS[:2]:
        assert same_bytes(served / name, dest / name)


# --- the mirror as a whole -----------------------------------------------------------------


def test_verify_names_ids_held_by_two_parts_and_absent_parts(tmp_path: Path, served: Path) -> None:
    write_part(served / PARTS[1], [5000, 1])  # id 1 is also in part 0
    dest = tmp_path / "dest"
    with LocalHost(served) as host:
        settings = MirrorSettings(dest=str(dest), parts=PARTS[:2], base_url=host.base_url)
        assert not mirror(settings).failed
    report = verify_mirror(str(dest))
    text = report.render()
    assert not report.ok
    assert f"DUPLICATE sample ids (1, held by two parts): 1 in {PARTS[0]} and {PARTS[1]}" in text
    assert "2 of 60 parts mirrored; absent: parts 2-59" in text


def test_coverage_of_all_sixty_parts_names_missing_ids() -> None:
    def record(index: int, ids: str) -> PartRecord:
        return PartRecord(
            name=f"SynthHuman_{index:04d}.zip",
            url="",
            size=1,
            etag=None,
            last_modified=None,
            content_md5=None,
            sha256="0" * 64,
            member_count=1,
            sample_ids=ids,
            scenario_counts={},
            verified_at="",
        )

    from david_data.mirror.manifest import Manifest

    parts = {}
    for i in range(60):
        ids = list(range(i * 5000, min((i + 1) * 5000, 298_008)))
        if i == 7:
            ids.remove(35_123)
        parts[f"SynthHuman_{i:04d}.zip"] = record(i, compact_ranges(ids))
    found = coverage(Manifest(parts=parts))
    assert found.absent_parts == () and found.missing_ids == "35123" and not found.ok
    assert "MISSING sample ids (all 60 parts are there): 35123" in "\n".join(found.render())


# --- smaller things ------------------------------------------------------------------------


def test_extract_flattens_an_inner_synthhuman_folder_and_reruns_say_no_speed(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    write_part(served / PARTS[0], [0, 1], SynthOptions(folder="SynthHuman"))
    dest = tmp_path / "dest"
    with LocalHost(served) as host:
        args = [
            str(dest),
            "--base-url",
            host.base_url,
            "--parts",
            "0",
            "--extract",
            "--no-progress",
        ]
        assert cli("mirror", *args).returncode == 0
        assert (dest / "SynthHuman" / "rgb_0000000.png").is_file()
        assert not (dest / "SynthHuman" / "SynthHuman").exists()
        assert len(list((dest / "SynthHuman").iterdir())) == 10
        again = cli("mirror", *args)
    assert again.returncode == 0
    assert "0 fetched and verified, 1 already there" in again.stdout
    # Nothing was downloaded: no speed other than 0 B/s anywhere (it used to say 59.9 GB/s).
    assert re.search(r"[1-9][\d.,]* [KMGT]?B/s", again.stdout + again.stderr) is None
    assert not (dest / ".mirror.lock").exists()
    assert load_manifest(*_local(dest)).parts[PARTS[0]].extracted


def _local(dest: Path):  # type: ignore[no-untyped-def]
    from david_data.fsutil import resolve

    return resolve(str(dest))
