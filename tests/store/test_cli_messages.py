"""Issue 8 "honest exit status and messages" for query, show and verify-store: one
``error:`` line naming the object and the fix, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from david_data.cli import main

CLI = [sys.executable, "-m", "david_data"]


def fails_with(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--columns", "0"], "--columns must be at least 1 (got 0)"), (["--limit", "0"], "--limit")],
)
def test_show_grid_sizes(
    store: Path, tmp_path: Path, flags: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.png"
    sql = "SELECT sample_id FROM samples"
    fails_with(["show", str(store), "--query", sql, *flags, "-o", str(out)], capsys, needle)
    assert not out.exists()


def test_output_that_is_a_folder(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT * FROM samples"
    fails_with(
        ["query", str(store), sql, "--format", "csv", "-o", str(tmp_path)],
        capsys,
        f"-o {tmp_path} is a folder",
        "result.csv",
    )
    fails_with(["show", str(store), "--id", "3", "-o", str(tmp_path)], capsys, "is a folder")


def test_output_in_a_read_only_folder(
    store: Path, read_only_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = read_only_dir / "out.csv"
    sql = "SELECT * FROM samples"
    fails_with(
        ["query", str(store), sql, "--format", "csv", "-o", str(target)],
        capsys,
        f"-o {target} cannot be written",
        "choose a writable location",
    )
    fails_with(
        ["show", str(store), "--id", "3", "-o", str(read_only_dir / "x.png")],
        capsys,
        "cannot be written",
    )
    assert list(read_only_dir.iterdir()) == []


def test_output_under_a_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fails_with(
        ["query", str(store), "SELECT 1", "--format", "json", "-o", str(blocker / "out.json")],
        capsys,
        "is a file, not a folder",
    )


def test_query_output_files_are_written(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "out.json"
    assert (
        main(
            [
                "query",
                str(store),
                "SELECT sample_id FROM samples LIMIT 2",
                "--format",
                "json",
                "-o",
                str(target),
            ]
        )
        == 0
    )
    assert '"sample_id": 0' in target.read_text()


@pytest.mark.parametrize("flag", ["--sample", "--sample=0"])
def test_verify_store_sample_must_be_positive(
    store: Path, mirror: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [flag, "-1"] if flag == "--sample" else [flag]
    fails_with(
        ["verify-store", str(store), "--against", str(mirror), *argv],
        capsys,
        "--sample must be at least 1",
    )


def test_show_sample_id_out_of_range(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fails_with(
        ["show", str(store), "--id", "-1", "-o", str(tmp_path / "x.png")],
        capsys,
        "sample id -1 is out of range",
    )


def test_stores_that_do_not_exist_or_are_not_stores(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.zarr"
    fails_with(["query", str(missing), "SELECT 1"], capsys, f"store {missing} does not exist")
    fails_with(["verify-store", str(missing), "--against", str(mirror)], capsys, "does not exist")
    fails_with(
        ["show", str(missing), "--id", "3", "-o", str(tmp_path / "x.png")], capsys, "does not exist"
    )
    folder = tmp_path / "plain"
    folder.mkdir()
    fails_with(["query", str(folder), "SELECT 1"], capsys, "is not a david-data store")
    (folder / "zarr.json").write_bytes(b"")
    fails_with(["query", str(folder), "SELECT 1"], capsys, "zarr.json is not a JSON object")


def test_verify_store_names_an_empty_shard_object(
    store_copy: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = store_copy / "depth" / "c" / "1" / "0" / "0"
    shard.write_bytes(b"")
    fails_with(
        ["verify-store", str(store_copy), "--against", str(mirror)],
        capsys,
        f"holds 1 empty shard object(s): {shard}",
        "rerun 'david-data convert'",
    )


def test_verify_store_names_an_empty_metadata_file(
    store_copy: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (store_copy / "metadata.parquet").unlink(missing_ok=True)
    broken = store_copy / "metadata" / "shard-000000.parquet"
    broken.write_bytes(b"")
    fails_with(
        ["verify-store", str(store_copy), "--against", str(mirror)],
        capsys,
        f"metadata file {broken} is damaged (0 bytes)",
    )


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        [*CLI, "query", str(tmp_path / "nowhere"), "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: store "), run.stderr


def test_verify_store_passes_on_a_store_mixing_half_and_float_parts(
    store: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Part 0 has float16 EXRs, part 19 float32: the store holds float32, and the check
    decodes the source as the store holds it."""
    assert main(["verify-store", str(store), "--against", str(mirror)]) == 0
    assert "12 samples checked, 0 difference(s)" in capsys.readouterr().out
