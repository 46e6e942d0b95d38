"""Helpers shared by the conversion tests: the synthetic mirror layout and an
independent decoder (cv2, OpenEXR, numpy.loadtxt: no david_data code)."""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from david_data import facts
from david_data.synth import SynthOptions

SHARD = 4
"""Samples per shard in tests (a divisor of 5000)."""

# part name -> (sample ids, options). Float32 EXRs, members in a folder, a ZIP64 part,
# deflated members, all three scenarios, and part 19 holding face and full-body ids.
MIRROR_PARTS = {
    "SynthHuman_0000.zip": (range(0, 10), SynthOptions(folder="SynthHuman", pixel_type="float")),
    "SynthHuman_0001.zip": (
        range(5000, 5006),
        SynthOptions(pixel_type="float", zip64=True, compression="deflated"),
    ),
    "SynthHuman_0019.zip": (
        range(98036, 98044),
        SynthOptions(pixel_type="float", depth_channel="Z", normal_channels=("R", "G", "B")),
    ),
    "SynthHuman_0040.zip": (range(200000, 200005), SynthOptions(pixel_type="float")),
}


@dataclass(frozen=True)
class Mirror:
    path: Path
    ids: dict[str, list[int]]

    @property
    def all_ids(self) -> list[int]:
        return sorted(i for ids in self.ids.values() for i in ids)


def member_bytes(zip_path: Path, sample_id: int) -> dict[str, bytes]:
    """The raw member bytes of one sample, read with the standard zipfile module."""
    out = {}
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            ref = facts.parse_member_name(info.filename)
            if ref is not None and ref.sample_id == sample_id:
                out[ref.kind] = archive.read(info)
    return out


def independent_decode(files: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Decode a sample without david_data code: cv2, OpenEXR and numpy.loadtxt."""
    rgb = cv2.imdecode(np.frombuffer(files["rgb"], np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    alpha = cv2.imdecode(np.frombuffer(files["alpha"], np.uint8), cv2.IMREAD_UNCHANGED)
    depth_exr = OpenEXR.File(io.BytesIO(files["depth"]), separate_channels=True).channels()
    (depth,) = [c.pixels for c in depth_exr.values()]
    normal_exr = OpenEXR.File(io.BytesIO(files["normal"]), separate_channels=True).channels()
    names = ("X", "Y", "Z") if "X" in normal_exr else ("R", "G", "B")
    normal = np.stack([normal_exr[n].pixels for n in names], axis=-1)
    cam = np.loadtxt(io.StringIO(files["cam"].decode()))
    return {"rgb": rgb, "alpha": alpha, "depth": depth, "normal": normal, "intrinsics": cam}


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: bytes and mtime (equal snapshots: nothing was written)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def store_content(root: Path) -> dict[str, bytes]:
    """A store's arrays and per-shard metadata files (what two equal conversions share;
    ``zarr.json`` holds the creation time, the consolidated file the shard files' mtimes)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and (p.parts[len(root.parts)] in FIELDS or p.name.startswith("shard-"))
        and p.name != "zarr.json"
    }


FIELDS = ("rgb", "alpha", "depth", "normal", "intrinsics")


def mirror_of(parts: Path, dest: Path, *names: str) -> Path:
    """A mirror folder ``dest`` holding copies of some of the parts in ``parts``."""
    dest.mkdir()
    for name in names:
        shutil.copy(parts / name, dest / name)
    return dest
