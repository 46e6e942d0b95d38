"""Encoded sample files decode back to exactly the generated arrays, for every option."""

from __future__ import annotations

import numpy as np
import pytest

from david_data.errors import ConfigError
from david_data.facts import DEPTH_BACKGROUND, sample_member_names
from david_data.synth import SynthOptions, encode_sample, sample_arrays


@pytest.mark.parametrize(
    ("sample_id", "options"),
    [
        (7, SynthOptions()),
        (120_001, SynthOptions(pixel_type="float")),
        (220_002, SynthOptions(depth_channel="R", normal_channels=("R", "G", "B"))),
        (3, SynthOptions(depth_channel="Z", pixel_type="float", normal_channels=("R", "G", "B"))),
        (98_040, SynthOptions(depth_channel="depth")),
    ],
)
def test_files_round_trip_exactly(sample_id, options, decode):
    files = encode_sample(sample_id, options)
    assert list(files) == list(sample_member_names(sample_id).values())
    back = decode(files)
    want = sample_arrays(sample_id)
    dtype = np.float16 if options.pixel_type == "half" else np.float32

    np.testing.assert_array_equal(back["rgb"], want["rgb"])  # PNG is BGR; decoded back to RGB
    np.testing.assert_array_equal(back["alpha"], want["alpha"])
    assert back["depth"].channels == (options.depth_channel,)
    assert back["depth"].pixels.dtype == dtype
    np.testing.assert_array_equal(back["depth"].pixels, want["depth"].astype(dtype))
    assert back["normal"].channels == options.normal_channels
    assert back["normal"].pixels.dtype == dtype
    np.testing.assert_array_equal(back["normal"].pixels, want["normal"].astype(dtype))
    np.testing.assert_array_equal(
        back["intrinsics"], want["intrinsics"]
    )  # loadtxt gives float64 back


def test_half_precision_keeps_the_facts(decode):
    back = decode(encode_sample(11))
    depth, normal = back["depth"].pixels, back["normal"].pixels.astype(np.float32)
    fg = back["alpha"] > 0
    # 65504 is the largest float16, so the background survives half precision exactly.
    np.testing.assert_array_equal(depth == np.float16(DEPTH_BACKGROUND), ~fg)
    assert np.abs(np.linalg.norm(normal[fg], axis=-1) - 1).max() < 2e-3


def test_cam_file_is_three_lines_numpy_reads():
    text = encode_sample(0)["cam_0000000.txt"].decode("ascii")
    lines = text.splitlines()
    assert len(lines) == 3 and all(len(line.split()) == 3 for line in lines)
    assert lines[2].split() == ["0.0", "0.0", "1.0"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depth_channel": "D"},
        {"normal_channels": ("X", "Y")},
        {"normal_channels": ("Z", "Y", "X")},
        {"pixel_type": "double"},
        {"compression": "bzip2"},
        {"folder": "../escape"},
        {"folder": "/"},
    ],
)
def test_bad_options_are_rejected_with_the_choices(kwargs):
    with pytest.raises(ConfigError):
        SynthOptions(**kwargs)


def test_options_normalise_folder_and_channel_lists():
    options = SynthOptions(folder="/SynthHuman/", normal_channels=["R", "G", "B"])
    assert options.folder == "SynthHuman"
    assert options.normal_channels == ("R", "G", "B")
    assert options.member_path("rgb_0000001.png") == "SynthHuman/rgb_0000001.png"
