"""Issue 15 item 1, "one zip layer, every byte checked": every local-header, central
directory and end-record byte of a small part (two stored, three deflated members; plain
and ZIP64), and each member's first and last data byte, flipped in turn:

- once in flight: the check never passes (nothing wrong lands), and the byte ranges it
  names repair the part, or it asks for the whole part again;
- at rest: ``verify`` names the part;
- in the host's own copy: the check ends (no hang); only bytes that no other record
  repeats can pass, and then the part is the host's bytes exactly.

The sweep runs at library level (``check_zip`` and ``verify_mirror`` in process); a few
offsets go through the whole mirror against the loopback host, and a few through the CLI.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from zipflip_helpers import NAME, build_part, flipped, inflates_back, layout_of

from david_data.mirror import MirrorSettings, RetryPolicy, mirror, verify_mirror
from david_data.mirror.zipcheck import ZipCheck, check_zip
from david_data.synth.host import Fault, LocalHost

ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / ".venv" / "bin" / "david-data")
FAST = RetryPolicy(base_delay=0.02, max_delay=0.2, stall_timeout=2.0, connect_timeout=5.0)
PARTS = {"zip": build_part(), "zip64": build_part(zip64=True)}


def _check(data: bytes, server: bytes) -> ZipCheck:
    """The check a download gets: ``server`` is what a second read from the host returns."""
    return check_zip(
        io.BytesIO(data), len(data), confirm=lambda offset, n: server[offset : offset + n]
    )


def test_the_part_has_what_the_sweep_needs() -> None:
    for data in PARTS.values():
        layout = layout_of(data)
        assert inflates_back(data) and _check(data, data).ok
        assert {method for _, method, _ in layout.data} == {0, 8}
        assert len(layout.structural()) > 500


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["zip", "zip64"])
def test_a_byte_flipped_once_in_flight_never_passes_and_its_ranges_repair_it(kind: str) -> None:
    good = PARTS[kind]
    whole_again = []
    for offset in layout_of(good).structural():
        bad = flipped(good, offset)
        check = _check(bad, good)
        assert not check.ok, f"byte {offset} flipped in flight would land"
        if not check.repairable:
            whole_again.append(offset)  # the mirror fetches the whole part again
            continue
        ranges = check.ranges()
        assert any(start <= offset < end for start, end in ranges), (offset, check.problems)
        repaired = bytearray(bad)
        for start, end in ranges:
            repaired[start:end] = good[start:end]
        assert bytes(repaired) == good and _check(good, good).ok
    assert not whole_again, whole_again


@pytest.mark.timeout(60, method="thread")  # verify checks in worker threads
@pytest.mark.parametrize("kind", ["zip", "zip64"])
def test_a_byte_flipped_at_rest_is_named_by_verify(tmp_path: Path, kind: str) -> None:
    good = PARTS[kind]
    served, dest = tmp_path / "served", tmp_path / "dest"
    served.mkdir()
    (served / NAME).write_bytes(good)
    with LocalHost(served) as host:
        settings = MirrorSettings(dest=str(dest), parts=(NAME,), base_url=host.base_url)
        assert not mirror(settings).failed
    assert verify_mirror(str(dest), record=False).ok
    for offset in layout_of(good).structural():
        (dest / NAME).write_bytes(flipped(good, offset))
        report = verify_mirror(str(dest), record=False)
        assert not report.ok and NAME in report.render(), offset


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["zip", "zip64"])
def test_a_byte_flipped_in_the_hosts_copy_ends_the_check(kind: str) -> None:
    """The host sends the same wrong byte on every read: every check returns, and only
    bytes no other record repeats (directory-only fields, a local header's "version
    needed") can pass; such a part is then exactly the host's bytes."""
    good = PARTS[kind]
    layout = layout_of(good)
    versions = {r.start + i for r in layout.local_headers for i in (4, 5)}
    passed = []
    for offset in layout.structural():
        bad = flipped(good, offset)
        if _check(bad, bad).ok:
            passed.append(offset)
    assert all(o in layout.central or o in versions for o in passed), passed
    assert not any(o in r for o in passed for _, _, r in layout.data)


# --- the whole mirror, in process, against the loopback host ----------------------------


def _places(good: bytes) -> dict[str, int]:
    layout = layout_of(good)
    return {
        "deflated member's last byte": layout.data[-1][2][-1],
        "stored member's first byte": layout.data[1][2][0],
        "local-header offset in the directory": layout.offset_fields[0],
        "second local header's signature": layout.local_headers[1].start,
        "end record's entry count": len(good) - 22 + 10,
    }


@pytest.mark.timeout(120, method="thread")  # the mirror checks in worker threads
def test_the_mirror_repairs_a_byte_flipped_in_flight(tmp_path: Path) -> None:
    good = PARTS["zip"]
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(good)
    for where, offset in _places(good).items():
        dest = tmp_path / str(offset)
        with LocalHost(served) as host:
            armed = host.faults.add(Fault.corrupt(offset), times=1, path=NAME)
            report = mirror(
                MirrorSettings(dest=str(dest), parts=(NAME,), base_url=host.base_url, policy=FAST)
            )
        assert armed.fired == 1, where
        assert not report.failed, (where, report.summary())
        assert (dest / NAME).read_bytes() == good, where


@pytest.mark.timeout(120, method="thread")
def test_the_mirror_fails_by_name_when_the_hosts_copy_is_damaged(tmp_path: Path) -> None:
    good = PARTS["zip"]
    for where, offset in _places(good).items():
        served, dest = tmp_path / f"served-{offset}", tmp_path / f"dest-{offset}"
        served.mkdir()
        (served / NAME).write_bytes(flipped(good, offset))
        with LocalHost(served) as host:
            report = mirror(
                MirrorSettings(dest=str(dest), parts=(NAME,), base_url=host.base_url, policy=FAST)
            )
        (failed,) = report.failed
        assert failed.name == NAME and "corrupt" in failed.error, (where, failed.error)
        assert not (dest / NAME).exists(), where


# --- a handful through the CLI ---------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.timeout(300)
def test_the_cli_repairs_in_flight_fails_a_damaged_host_copy_and_verify_names_it(
    tmp_path: Path,
) -> None:
    good = PARTS["zip"]
    places = _places(good)
    last, field = (
        places["deflated member's last byte"],
        places["local-header offset in the directory"],
    )
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(good)
    with LocalHost(served) as host:
        host.faults.add(Fault.corrupt(last), times=1, path=NAME)
        run = _cli(
            "mirror",
            str(tmp_path / "ok"),
            "--base-url",
            host.base_url,
            "--parts",
            "0",
            "--no-progress",
        )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "ok" / NAME).read_bytes() == good

    (served / NAME).write_bytes(flipped(good, field))
    with LocalHost(served) as host:
        run = _cli(
            "mirror",
            str(tmp_path / "bad"),
            "--base-url",
            host.base_url,
            "--parts",
            "0",
            "--no-progress",
        )
    assert run.returncode == 1, run.stderr[-2000:]
    assert f"FAILED {NAME}" in run.stdout + run.stderr
    assert not (tmp_path / "bad" / NAME).exists()

    rest = tmp_path / "rest"
    shutil.copytree(tmp_path / "ok", rest)
    (rest / NAME).write_bytes(flipped(good, last))
    run = _cli("verify", str(rest))
    assert run.returncode == 1 and NAME in run.stdout + run.stderr, run.stdout[-2000:]
    assert "deflate stream" in run.stdout + run.stderr
