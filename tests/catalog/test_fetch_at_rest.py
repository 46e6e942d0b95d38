"""A rerun of ``fetch`` trusts no file it finds at DEST: each is read again and checked
against its member's size and CRC-32; one that fails is removed, fetched again (only it)
and named in the report, and the bytes at DEST end identical to the zip member's."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from catalog_helpers import PARTS, members, tree

from david_data.cli import main
from david_data.fetch.check import file_crc32
from david_data.fsutil import LocalFiles
from david_data.synth.host import Fault, LocalHost

PART = list(PARTS)[0]  # SynthHuman_0000.zip: samples 0, 1, 2
IDS = "0-2"
VICTIM = "rgb_0000001.png"


def _flip_a_byte(path: Path) -> None:
    with open(path, "r+b") as handle:  # same size, one bit of one byte in the middle
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))


def _same_size_other_bytes(path: Path) -> None:
    path.write_bytes(bytes(255 - b for b in path.read_bytes()))


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def _remove(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "a byte flipped": (_flip_a_byte, "re-fetched 1 file that failed its CRC-32 check: "),
    "same size, other bytes": (
        _same_size_other_bytes,
        "re-fetched 1 file that failed its CRC-32 check: ",
    ),
    "cut short": (_cut_short, "re-fetched 1 file of the wrong size: "),
    "removed": (_remove, "re-fetched 1 file the manifest records but DEST lacked: "),
}


def _fetch(host: LocalHost, dest: Path, *extra: str) -> int:
    return main(["fetch", str(dest), "--base-url", host.base_url, "--ids", IDS, *extra])


def _member_record(served: Path, name: str) -> tuple[int, int]:
    """``(offset, end)`` of the member's local header and data in the part."""
    with zipfile.ZipFile(served / PART) as archive:
        info = archive.getinfo(name)
    return info.header_offset, info.header_offset + 30 + len(name) + info.compress_size


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_file_damaged_at_rest_is_fetched_again_by_a_rerun(
    host: LocalHost,
    served: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    dest = tmp_path / "dest"
    assert _fetch(host, dest, "--no-progress") == 0
    expected = members(served / PART)
    assert tree(dest / "SynthHuman") == expected
    harm, message = DAMAGE[damage]
    harm(dest / "SynthHuman" / VICTIM)
    capsys.readouterr()
    host.reset_stats()

    assert _fetch(host, dest, "--dry-run") == 0  # names it, changes nothing
    out = capsys.readouterr().out
    assert f"1 file(s) at DEST failed their check and are fetched again:\n  {VICTIM}: " in out
    assert {r.method for r in host.stats.requests} == {"HEAD"}

    assert _fetch(host, dest, "--no-progress") == 0
    out = capsys.readouterr().out
    assert "3 of 3 samples complete (1 fetched now)" in out
    assert message + VICTIM in out
    assert tree(dest / "SynthHuman") == expected  # byte-identical to the zip members
    # Only that member was fetched again: one ranged GET over its record.
    gets = [r for r in host.stats.requests if r.method == "GET"]
    start, end = _member_record(served, VICTIM)
    assert len(gets) == 1 and gets[0].range is not None
    first, last = (int(x) for x in gets[0].range.removeprefix("bytes=").split("-"))
    assert first == start and end <= last + 1 <= end + 16  # (+ a data descriptor)
    manifest = json.loads((dest / "fetch-manifest.json").read_bytes())
    assert sorted(manifest["samples"]) == ["0", "1", "2"]

    # Intact again: the next rerun reads the files, fetches nothing and says nothing.
    host.reset_stats()
    assert _fetch(host, dest, "--no-progress") == 0
    out = capsys.readouterr().out
    assert "3 of 3 samples complete (0 fetched now)" in out and "re-fetched" not in out
    assert {r.method for r in host.stats.requests} == {"HEAD"}


def test_a_damaged_file_with_no_manifest_is_fetched_again(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Files under their final names but no manifest (it was lost, or a run was killed
    # before it wrote it): their bytes are checked all the same.
    dest = tmp_path / "dest"
    assert _fetch(host, dest, "--no-progress") == 0
    (dest / "fetch-manifest.json").unlink()
    _flip_a_byte(dest / "SynthHuman" / VICTIM)
    capsys.readouterr()
    assert _fetch(host, dest, "--no-progress") == 0
    assert f"re-fetched 1 file that failed its CRC-32 check: {VICTIM}" in capsys.readouterr().out
    assert tree(dest / "SynthHuman") == members(served / PART)


def test_a_damaged_file_that_cannot_be_fetched_again_is_removed_and_named(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The member on the server is damaged now too (each read of it flips a byte): the
    # rerun exits 1, the damaged copy is gone (missing, never wrong) and its sample is
    # out of the manifest; a later rerun, the server healed, repairs it.
    dest = tmp_path / "dest"
    assert _fetch(host, dest, "--no-progress") == 0
    _flip_a_byte(dest / "SynthHuman" / VICTIM)
    start, end = _member_record(served, VICTIM)
    host.faults.add(Fault.corrupt((start + end) // 2), times=None)
    capsys.readouterr()

    assert _fetch(host, dest, "--no-progress") == 1
    out = capsys.readouterr().out
    assert f"FAILED {VICTIM}: CRC-32 mismatch" in out
    assert "the copy at DEST (CRC-32 0x" in out and ") was removed" in out
    assert not (dest / "SynthHuman" / VICTIM).exists()
    manifest = json.loads((dest / "fetch-manifest.json").read_bytes())
    assert sorted(manifest["samples"]) == ["0", "2"]

    host.faults.clear()
    assert _fetch(host, dest, "--no-progress") == 0
    assert f"re-fetched 1 file the manifest records but DEST lacked: {VICTIM}" not in (
        capsys.readouterr().out
    )  # no longer recorded: it is simply missing, and fetched
    assert tree(dest / "SynthHuman") == members(served / PART)


def test_file_crc32_reads_in_blocks(tmp_path: Path) -> None:
    data = os.urandom(100_003)
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = (len(data), zlib.crc32(data))
    for block in (1, 4096, 1 << 20):
        assert file_crc32(LocalFiles(), str(path), block) == expected
    (tmp_path / "empty").write_bytes(b"")
    assert file_crc32(LocalFiles(), str(tmp_path / "empty")) == (0, 0)


def test_verify_checks_a_fetch_folder_offline_and_names_the_fix(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    assert _fetch(host, dest, "--no-progress") == 0
    folder = dest / "SynthHuman"
    verify = ["verify", str(dest), "--no-progress"]
    capsys.readouterr()
    host.reset_stats()
    assert main(verify) == 0
    out = capsys.readouterr().out
    assert "fetch folder, 3 sample(s) in fetch-manifest.json" in out and "15 good" in out
    assert out.rstrip().endswith("all good")

    _flip_a_byte(folder / VICTIM)
    (folder / "cam_0000002.txt").unlink()
    (folder / "rgb_0000000.png.0123abcd.tmp").write_bytes(b"x")  # a killed run's: no problem
    assert main(verify) == 1
    out = capsys.readouterr().out
    assert "13 good, 1 corrupt, 1 missing, 0 unexpected" in out
    assert f"  CORRUPT SynthHuman/{VICTIM}\n    CRC-32 0x" in out
    assert "  MISSING SynthHuman/cam_0000002.txt\n" in out
    assert "rerun the same fetch to re-fetch the 2 damaged sample(s)" in out
    assert main([*verify, "--quick"]) == 1  # presence and size: the missing file only
    assert "14 good, 0 corrupt, 1 missing" in capsys.readouterr().out
    assert not host.stats.requests  # offline: the manifest is the reference
    assert sorted(json.loads((dest / "fetch-manifest.json").read_bytes())["samples"]) == [
        "0", "1", "2",
    ]  # fmt: skip  # verify writes nothing

    # The command it names fetches just those samples again; then all is good.
    assert main(verify) == 1
    command = capsys.readouterr().out.splitlines()[-1].split("or just those: ")[1]
    assert command.endswith("--parts 0 --ids 1,2")
    assert main(command.split()[1:]) == 0
    capsys.readouterr()
    assert main(verify) == 0
    assert tree(folder) == members(served / PART)  # the temp file removed, as promised

    (folder / "notes.txt").write_text("mine")
    body = json.loads((dest / "fetch-manifest.json").read_bytes())
    del body["samples"]["2"]  # its files are not recorded (as after a stopped fetch)
    (dest / "fetch-manifest.json").write_text(json.dumps(body))
    assert main(verify) == 1
    out = capsys.readouterr().out
    assert "10 good, 0 corrupt, 0 missing, 6 unexpected" in out
    assert "  UNEXPECTED SynthHuman/notes.txt\n    not a SynthHuman sample file" in out
    assert "  UNEXPECTED SynthHuman/rgb_0000002.png\n    not in fetch-manifest.json" in out


def test_verify_names_both_kinds_of_folder_when_given_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds no manifest.json" in err and "nor a fetch-manifest.json" in err


@pytest.mark.slow
def test_the_verify_flow_checks_a_fetch_folder(
    prefect_harness: None, host: LocalHost, tmp_path: Path
) -> None:
    from david_data.flows._executor import report_of_state
    from david_data.flows.verify import verify_flow

    dest = tmp_path / "dest"
    assert _fetch(host, dest, "--no-progress") == 0
    state = verify_flow(dest=str(dest), return_state=True)
    assert state.is_completed() and report_of_state(state).ok
    _flip_a_byte(dest / "SynthHuman" / VICTIM)
    state = verify_flow(dest=str(dest), jobs=1, return_state=True)
    assert state.is_failed()
    report = report_of_state(state)
    assert [v.name for v in report.by_status("corrupt")] == [VICTIM], report.summary()


def test_verify_of_a_fetch_folder_on_a_dask_cluster_gives_the_same_report(
    host: LocalHost,
    tmp_path: Path,
    dask_cluster: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import david_data.fetch.verify as fetch_verify

    monkeypatch.setattr(fetch_verify, "SAMPLES_PER_UNIT", 2)  # 3 samples: 2 units (tasks)
    dest = tmp_path / "dest"
    assert _fetch(host, dest, "--no-progress") == 0
    _flip_a_byte(dest / "SynthHuman" / VICTIM)
    verify = ["verify", str(dest), "--no-progress"]
    capsys.readouterr()
    assert main(verify) == 1
    local = capsys.readouterr().out
    caplog.clear()
    with caplog.at_level("INFO", logger="david_data"):
        assert main([*verify, "--dask-address", dask_cluster]) == 1
    assert capsys.readouterr().out == local  # the same verdicts, the damaged file named
    assert f"CORRUPT SynthHuman/{VICTIM}" in local
    assert f"3 sample(s) in 2 unit(s) on Dask cluster {dask_cluster}" in caplog.text
