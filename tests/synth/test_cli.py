"""``david-data synth`` and ``david-data serve`` from the command line."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import urllib.request
import zipfile

import pytest

from david_data.cli import main
from david_data.synth import SynthOptions, write_part


def test_synth_writes_the_same_parts_as_the_library(tmp_path, capsys):
    code = main(
        [
            "synth", str(tmp_path), "--parts", "sample,1", "--samples-per-part", "2",
            "--folder", "SynthHuman", "--float", "--depth-channel", "Z",
            "--normal-channels", "RGB", "--zip64", "--deflate", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "SynthHuman_0001.zip",
        "SynthHuman_sample.zip",
    ]
    options = SynthOptions(
        folder="SynthHuman",
        pixel_type="float",
        depth_channel="Z",
        normal_channels=("R", "G", "B"),
        zip64=True,
        compression="deflated",
    )
    for name, ids in (("SynthHuman_0001.zip", [5000, 5001]), ("SynthHuman_sample.zip", [0])):
        expected = write_part(tmp_path / f"expected_{name}", ids, options)
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == expected.sha256
    assert "wrote 2 part(s), 3 samples" in capsys.readouterr().out


def test_synth_in_a_fresh_process_gives_identical_bytes(tmp_path):
    """Determinism holds across processes (no per-process hash seed, no RNG state)."""
    code = "import sys; from david_data.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["synth", str(tmp_path), "--parts", "0", "--samples-per-part", "2", "--no-progress"]
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    expected = write_part(tmp_path / "expected.zip", [0, 1])
    assert (
        hashlib.sha256((tmp_path / "SynthHuman_0000.zip").read_bytes()).hexdigest()
        == expected.sha256
    )


def test_synth_extracted_layout(tmp_path):
    assert (
        main(
            [
                "synth",
                str(tmp_path),
                "--parts",
                "2",
                "--samples-per-part",
                "1",
                "--extracted",
                "--no-progress",
            ]
        )
        == 0
    )
    files = sorted(p.name for p in (tmp_path / "SynthHuman").iterdir())
    assert files == [
        "alpha_0010000.png", "cam_0010000.txt", "depth_0010000.exr", "normal_0010000.exr", "rgb_0010000.png"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["--parts", "0-x"], ["--parts", "99"], ["--samples-per-part", "0"], ["--folder", "../up"]],
)
def test_synth_rejects_bad_options_with_exit_2(tmp_path, args, capsys):
    assert main(["synth", str(tmp_path / "out"), "--no-progress", *args]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_serve_prints_a_base_url_that_serves_the_folder_until_ctrl_c(tmp_path):
    write_part(tmp_path / "SynthHuman_sample.zip", [0])
    code = "import sys; from david_data.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/")
        with urllib.request.urlopen(base_url + "SynthHuman_sample.zip", timeout=10) as response:
            body = response.read()
        assert body == (tmp_path / "SynthHuman_sample.zip").read_bytes()
        with zipfile.ZipFile(tmp_path / "SynthHuman_sample.zip") as zf:
            assert len(zf.namelist()) == 5
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()


def test_serve_rejects_a_missing_folder(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
