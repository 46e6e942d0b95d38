"""What a user gets wrong with ``infer``/``evaluate`` is said in one ``error:`` line, before
any batch runs: exit 2 (exit 1 for a folder without images), no traceback, nothing written."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_helpers import cli, write_images


def _one_error_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_images(folder, 3)
    return folder


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "wrong shape"])
def test_a_bad_model_is_one_error_before_any_batch(
    kind: str, tmp_path: Path, images: Path, models: dict[str, Path]
) -> None:
    good = models["depth_fixed"].read_bytes()
    model = tmp_path / "model.onnx"
    content = {
        "garbage": os.urandom(5000),
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "wrong shape": good,  # a depth model given as a normal model
    }[kind]
    model.write_bytes(content)
    out = tmp_path / "out"
    proc = cli(["infer", str(images), str(out), "--model-path", str(model), "--task", "normal"])
    _one_error_line(proc, 2, str(model))
    assert not out.exists()  # no batch was tried


def test_a_folder_without_images_exits_1_saying_so(tmp_path: Path, models: dict[str, Path]) -> None:
    empty = tmp_path / "nothing here"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a picture")
    proc = cli(["infer", str(empty), str(tmp_path / "out"), "--model-path", str(models["foreground"])])
    _one_error_line(proc, 1, f"no images found under {empty}")


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for this user: immutable for root (permissions do not
    stop root), mode 555 for anyone else."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a folder read-only for root here (chattr +i)")
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


def test_a_read_only_destination_is_one_error(
    tmp_path: Path, images: Path, models: dict[str, Path]
) -> None:
    locked = tmp_path / "locked"
    with _read_only(locked):
        for out in (locked, locked / "predictions"):
            proc = cli(["infer", str(images), str(out), "--model-path", str(models["foreground"])])
            _one_error_line(proc, 2, "cannot write to output", str(out))
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--batch-size", "0"], "--batch-size must be a whole number of at least 1, got '0'"),
        (["--images-per-task", "many"], "--images-per-task must be a whole number"),
        (["--workers", "-2"], "--workers must be a whole number"),
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--dask-address", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ],
)
def test_bad_options_are_one_error(
    extra: list[str], needle: str, tmp_path: Path, images: Path, models: dict[str, Path]
) -> None:
    model = [] if "--model" in extra else ["--model-path", str(models["foreground"])]
    proc = cli(["infer", str(images), str(tmp_path / "out"), *model, *extra], timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[-1].startswith("error: ") and needle in lines[-1], lines


def test_an_output_that_is_a_file_and_a_missing_store_are_one_error(
    tmp_path: Path, images: Path, models: dict[str, Path]
) -> None:
    file = tmp_path / "out.txt"
    file.write_text("x")
    model = ["--model-path", str(models["foreground"])]
    _one_error_line(cli(["infer", str(images), str(file), *model]), 2, "is a file")
    missing = tmp_path / "no-store"
    _one_error_line(
        cli(["evaluate", str(missing), *model, "-o", str(tmp_path / "eval")]), 2, str(missing)
    )
    _one_error_line(
        cli(["infer", "--from-store", str(missing), str(tmp_path / "o"), *model]), 2, str(missing)
    )
