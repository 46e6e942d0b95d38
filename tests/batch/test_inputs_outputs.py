"""Listing inputs (folders, globs, files, URLs) and the output files' encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from david_data.errors import ConfigError, NoInputsError
from david_data.exr import read_depth_exr, read_normal_exr
from david_data.infer.inputs import InputSource, list_inputs, open_reader
from david_data.infer.outputs import (
    decode_foreground,
    encode_depth,
    encode_foreground,
    encode_normal,
    marker_name,
    output_names,
    parse_marker,
)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_folder_lists_images_recursively_with_relative_names(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "a.jpg",
        "sub/b.PNG",
        "sub/deep/c.tiff",
        "notes.txt",
        ".hidden.jpg",
        "x.jpg.1a2b.tmp",
    )
    listing = list_inputs(InputSource(url=str(tmp_path)))
    assert [i.rel for i in listing.items] == ["a.jpg", "sub/b.PNG", "sub/deep/c.tiff"]
    assert listing.items[1].path == f"{tmp_path}/sub/b.PNG"


def test_output_folder_inside_the_input_folder_is_not_an_input(tmp_path: Path) -> None:
    _touch(tmp_path, "a.jpg", "out/a.vis.png", "out/_runs/x.parquet")
    listing = list_inputs(InputSource(url=str(tmp_path)), exclude=str(tmp_path / "out"))
    assert [i.rel for i in listing.items] == ["a.jpg"]


def test_globs_take_what_they_name_relative_to_the_part_before_the_wildcard(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "photos/x/a.jpg",
        "photos/x/y/b.jpg",
        "photos/c.jpg",
        "photos/d.png",
        "photos/e.txt",
    )
    deep = list_inputs(InputSource(url=f"{tmp_path}/photos/**/*.jpg"))
    assert [i.rel for i in deep.items] == ["c.jpg", "x/a.jpg", "x/y/b.jpg"]
    flat = list_inputs(InputSource(url=f"{tmp_path}/photos/*"))
    assert [i.rel for i in flat.items] == ["c.jpg", "d.png", "e.txt"]  # explicit: even a non-image


def test_single_file_and_missing_input(tmp_path: Path) -> None:
    _touch(tmp_path, "one.webp")
    listing = list_inputs(InputSource(url=str(tmp_path / "one.webp")))
    assert [i.rel for i in listing.items] == ["one.webp"]
    with pytest.raises(ConfigError, match="does not exist"):
        list_inputs(InputSource(url=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoInputsError, match="no images found under"):
        list_inputs(InputSource(url=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match="either"):
        InputSource(url=str(tmp_path), store="s")


def test_memory_filesystem_urls_list_and_read() -> None:
    import cv2
    import fsspec

    fs = fsspec.filesystem("memory")
    image = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    fs.pipe("/bucket/in/p/q.png", cv2.imencode(".png", image)[1].tobytes())
    source = InputSource(url="memory://bucket/in/**/*.png")
    listing = list_inputs(source)
    assert [i.rel for i in listing.items] == ["p/q.png"]
    assert listing.root == "memory:///bucket/in"
    assert np.array_equal(open_reader(source).read(listing.items[0]), image)


def test_output_names_and_markers() -> None:
    names = output_names("a/b/photo.v2.jpg", ("depth", "normal", "foreground", "vis"))
    assert names == {
        "depth": "a/b/photo.v2.depth.exr",
        "normal": "a/b/photo.v2.normal.exr",
        "foreground": "a/b/photo.v2.foreground.png",
        "vis": "a/b/photo.v2.vis.png",
    }
    sha = "0123456789abcdef" * 4
    marker = marker_name("a/b/photo.v2.jpg", sha, "5f3c2a1b")
    assert marker == "a/b/photo.v2.0123456789ab.5f3c2a1b.done"
    assert parse_marker(marker) == ("a/b/photo.v2", "0123456789ab", "5f3c2a1b")
    assert parse_marker("a/b/photo.v2.0123456789ab.done") == ("a/b/photo.v2", "0123456789ab", None)
    assert parse_marker("a/b/photo.v2.depth.exr") is None


def test_encoded_outputs_read_back_exactly() -> None:
    rng = np.random.default_rng(0)
    depth = rng.normal(size=(48, 64)).astype(np.float32)
    normal = rng.normal(size=(48, 64, 3)).astype(np.float32)
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    fg = rng.random((48, 64)).astype(np.float32)

    d = read_depth_exr(encode_depth(depth))
    assert d.channels == ("Y",) and d.pixels.dtype == np.float32
    assert np.array_equal(d.pixels, depth)
    n = read_normal_exr(encode_normal(normal))
    assert n.channels == ("X", "Y", "Z") and np.array_equal(n.pixels, normal)
    back = decode_foreground(encode_foreground(fg))
    assert np.abs(back - fg).max() <= 0.5 / 65535 + 1e-7
