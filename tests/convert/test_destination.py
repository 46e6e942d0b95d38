"""Issue 8, "Stores stay ours" and the messages: every refusal happens before anything is
written, leaves the destination untouched, and is one `error:` line with exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zarr
from convert_helpers import snapshot

from david_data.cli import main
from david_data.synth import write_part

CLI = [sys.executable, "-m", "david_data"]


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mirror folder with one tiny part (one sample)."""
    root = tmp_path_factory.mktemp("dest-src") / "mirror"
    write_part(root / "SynthHuman_0000.zip", [0])
    return root


def refused(capsys: pytest.CaptureFixture[str], *args: str, expect: tuple[str, ...] = ()) -> str:
    """Run ``david-data convert ARGS`` in this process; assert exit 2 and one error line."""
    code = main(["convert", "--no-progress", "--workers", "1", *args])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for text in expect:
        assert text in lines[0], lines[0]
    return lines[0]


def test_a_foreign_zarr_group_is_refused_and_left_untouched(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "foreign.zarr"
    group = zarr.open_group(str(foreign), mode="w", attributes={"owner": "someone else"})
    group.create_array("x", shape=(4,), dtype="int32")[:] = [1, 2, 3, 4]
    before = snapshot(foreign)
    refused(capsys, str(src), str(foreign), expect=("not written by david-data", str(foreign)))
    assert snapshot(foreign) == before


def test_a_non_empty_folder_is_refused_and_left_untouched(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    before = snapshot(folder)
    refused(capsys, str(src), str(folder), expect=("chapter1.tex", "empty"))
    assert snapshot(folder) == before


def test_src_itself_or_a_folder_inside_it_is_refused(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(src)
    refused(capsys, str(src), str(src), expect=("SRC itself",))
    refused(capsys, str(src), str(src / "store.zarr"), expect=("inside SRC",))
    refused(capsys, str(src), str(src / ".." / src.name / "x"), expect=("inside SRC",))
    assert snapshot(src) == before and not (src / "store.zarr").exists()


def test_a_destination_that_is_a_file_is_refused(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "store.zarr"
    target.write_text("not a folder")
    refused(capsys, str(src), str(target), expect=("is a file",))
    assert target.read_text() == "not a folder"
    refused(capsys, str(src), str(target / "inner"), expect=("is a file",))


def test_a_missing_source_and_a_wrong_shard_size_are_refused(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    refused(capsys, str(tmp_path / "nope"), str(store), expect=("does not exist", "mirror"))
    for size in ("7", "0", "-100", "6000"):
        refused(capsys, str(src), str(store), "--shard-size", size, expect=("divisor of 5000",))
    refused(capsys, str(src), str(store), "--workers", "0", expect=("--workers",))
    assert not store.exists()


def test_an_empty_folder_is_accepted_and_a_store_keeps_its_settings(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    assert main(["convert", str(src), str(store), "--shard-size", "4", "--no-progress"]) == 0
    capsys.readouterr()
    before = snapshot(store)
    refused(
        capsys, str(src), str(store), "--profile", "compact", expect=("'fast' store", "--profile")
    )
    refused(capsys, str(src), str(store), "--shard-size", "100", expect=("4 samples per shard",))
    assert snapshot(store) == before
    # Without the options the store's own settings apply: nothing left to do.
    assert main(["convert", str(src), str(store), "--no-progress"]) == 0
    assert "0 shards written, 1 already committed" in capsys.readouterr().out


def as_unprivileged() -> list[str]:
    """A command prefix that makes root obey file permissions, as users do."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


def test_a_read_only_destination_is_one_error_line(src: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for store in (locked / "store.zarr", locked):
            run = subprocess.run(
                [*as_unprivileged(), *CLI, "convert", str(src), str(store), "--no-progress"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert run.returncode == 2, run.stdout + run.stderr
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
            assert "not writable" in lines[0] and "Traceback" not in run.stdout + run.stderr
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_a_store_where_no_file_can_be_made_is_refused_before_any_part_is_hashed(
    src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc passes every permission check, even for root, yet takes no new file: the old
    # plan hashed every part first and failed only when the run began to write.
    line = refused(capsys, str(src), "/proc/david-data-store", expect=("not writable", "/proc"))
    assert "SHA-256" not in line
