"""Read and write EXR images with the ``OpenEXR`` package.

OpenCV wheels may be built without OpenEXR (OpenCV 5.0 returns None for an EXR
without raising), so every EXR in this project goes through here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import OpenEXR

from .errors import SampleDecodeError

DEPTH_CHANNELS = (("Y",), ("R",), ("Z",), ("depth",))
"""Accepted names of the single depth channel, in order of preference."""
NORMAL_CHANNELS = (("X", "Y", "Z"), ("R", "G", "B"))
"""Accepted channel triples for normals."""


@dataclass(frozen=True, kw_only=True)
class ExrImage:
    """Pixels of one EXR image and the channel names they came from."""

    pixels: np.ndarray
    """(H, W) for one channel, (H, W, C) for several, in the file's pixel type."""
    channels: tuple[str, ...]


def _open(data: bytes, name: str) -> dict[str, np.ndarray]:
    try:
        exr = OpenEXR.File(io.BytesIO(data), separate_channels=True)
        return {key: value.pixels for key, value in exr.channels().items()}
    except Exception as exc:  # OpenEXR raises plain RuntimeError/ValueError
        raise SampleDecodeError(f"{name}: not a readable EXR image ({exc})", path=name) from exc


def _pick(channels: dict[str, np.ndarray], options: tuple[tuple[str, ...], ...], name: str, what: str) -> ExrImage:
    for names in options:
        if all(n in channels for n in names):
            planes = [channels[n] for n in names]
            pixels = planes[0] if len(planes) == 1 else np.stack(planes, axis=-1)
            return ExrImage(pixels=np.ascontiguousarray(pixels), channels=names)
    if len(options[0]) == 1 and len(channels) == 1:
        (only, plane), = channels.items()
        return ExrImage(pixels=np.ascontiguousarray(plane), channels=(only,))
    expected = " or ".join(",".join(o) for o in options)
    raise SampleDecodeError(
        f"{name}: {what} EXR has channels {sorted(channels)}; expected {expected}",
        path=name,
    )


def read_depth_exr(data: bytes, name: str = "<depth>") -> ExrImage:
    """Decode a one-channel depth EXR (channel ``Y``, ``R``, ``Z`` or ``depth``)."""
    return _pick(_open(data, name), DEPTH_CHANNELS, name, "depth")


def read_normal_exr(data: bytes, name: str = "<normal>") -> ExrImage:
    """Decode a three-channel normal EXR (``X,Y,Z`` or ``R,G,B``) into (H, W, 3)."""
    return _pick(_open(data, name), NORMAL_CHANNELS, name, "normal")


def encode_exr(pixels: np.ndarray, channels: tuple[str, ...], *, compression: str = "zip") -> bytes:
    """Encode (H, W) or (H, W, C) float16/float32 pixels as a scanline EXR.

    ``channels`` names the planes in order, e.g. ``("Y",)`` or ``("X", "Y", "Z")``.
    """
    if pixels.dtype not in (np.float16, np.float32):
        raise ValueError(f"EXR pixels must be float16 or float32, got {pixels.dtype}")
    planes = [pixels] if pixels.ndim == 2 else [pixels[..., i] for i in range(pixels.shape[-1])]
    if len(planes) != len(channels):
        raise ValueError(f"{len(planes)} planes but {len(channels)} channel names {channels}")
    modes = {"zip": OpenEXR.ZIP_COMPRESSION, "piz": OpenEXR.PIZ_COMPRESSION, "none": OpenEXR.NO_COMPRESSION}
    header = {"compression": modes[compression], "type": OpenEXR.scanlineimage}
    exr = OpenEXR.File(header, {n: np.ascontiguousarray(p) for n, p in zip(channels, planes, strict=True)})
    buffer = io.BytesIO()
    exr.write(buffer)
    return buffer.getvalue()
