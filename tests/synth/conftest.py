"""Helpers for the synthetic-data tests: decode a sample's files the way readers will."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from david_data.exr import read_depth_exr, read_normal_exr
from david_data.facts import parse_member_name


def decode_files(files: dict[str, bytes]) -> dict[str, object]:
    """Decode one sample's five files (keyed by file name or member path).

    rgb comes back in RGB order; EXRs as ``ExrImage`` so tests see the channel names.
    """
    out: dict[str, object] = {}
    for name, data in files.items():
        ref = parse_member_name(name)
        assert ref is not None, f"{name} is not a sample file name"
        buf = np.frombuffer(data, np.uint8)
        if ref.kind == "rgb":
            out["rgb"] = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        elif ref.kind == "alpha":
            out["alpha"] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        elif ref.kind == "depth":
            out["depth"] = read_depth_exr(data, name)
        elif ref.kind == "normal":
            out["normal"] = read_normal_exr(data, name)
        else:
            out["intrinsics"] = np.loadtxt(io.StringIO(data.decode("ascii")))
    return out


@pytest.fixture
def decode() -> Callable[[dict[str, bytes]], dict[str, object]]:
    return decode_files
