"""Decode one sample's raw files into the arrays the store holds, with clear errors.

Every failure raises :class:`~david_data.errors.SampleDecodeError` whose message names
the file and the problem; the converter records it as the sample's ``error``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from .. import facts
from ..errors import SampleDecodeError
from ..exr import read_depth_exr, read_normal_exr
from ..sources.parts import RawFiles

SHAPE = (facts.HEIGHT, facts.WIDTH)


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One decoded sample, as the store holds it."""

    sample_id: int
    rgb: np.ndarray
    """(512, 384, 3) uint8, RGB order."""
    alpha: np.ndarray
    """(512, 384) uint8."""
    depth: np.ndarray
    """(512, 384) float16 or float32, centimetres, 65504 for background."""
    normal: np.ndarray
    """(512, 384, 3) float16 or float32, X, Y, Z."""
    intrinsics: np.ndarray
    """(3, 3) float64."""

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "rgb": self.rgb,
            "alpha": self.alpha,
            "depth": self.depth,
            "normal": self.normal,
            "intrinsics": self.intrinsics,
        }


def _need(files: RawFiles, kind: str, sample_id: int) -> bytes:
    data = files.get(kind)
    if isinstance(data, SampleDecodeError):
        raise data
    if data is None:
        raise SampleDecodeError(
            f"{facts.member_name(kind, sample_id)}: member is missing from the source",
            path=facts.member_name(kind, sample_id),
        )
    return data


def _check_shape(name: str, array: np.ndarray, channels: int | None) -> None:
    expected = SHAPE if channels is None else (*SHAPE, channels)
    if array.shape != expected:
        raise SampleDecodeError(
            f"{name}: image is {'x'.join(map(str, array.shape))}, expected "
            f"{'x'.join(map(str, expected))} (height x width{' x channels' if channels else ''})",
            path=name,
        )


def decode_png(data: bytes, name: str, channels: int | None) -> np.ndarray:
    """Decode an 8-bit PNG with OpenCV: (H, W) grey or (H, W, 3) RGB order."""
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # an empty buffer fails an assertion instead of returning None
        image = None
    if image is None:
        raise SampleDecodeError(f"{name}: not a readable PNG image", path=name)
    if image.dtype != np.uint8:
        raise SampleDecodeError(f"{name}: PNG is {image.dtype}, expected 8-bit", path=name)
    _check_shape(name, image, channels)
    if channels == 3:
        # OpenCV gives BGR; the store holds RGB. cvtColor swaps in ~0.05 ms where a
        # reversed-stride copy (image[..., ::-1]) costs ~1.3-1.8 ms a sample.
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def decode_camera(data: bytes, name: str) -> np.ndarray:
    """Parse a camera file the way ``numpy.loadtxt`` does: a finite 3x3 float64 matrix."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matrix = np.loadtxt(io.StringIO(data.decode("ascii")), dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SampleDecodeError(f"{name}: not a text matrix ({exc})", path=name) from exc
    if matrix.shape != (3, 3):
        raise SampleDecodeError(
            f"{name}: camera matrix is {matrix.shape[0]}x{matrix.shape[1] if matrix.ndim > 1 else 0}, expected 3x3",
            path=name,
        )
    if not np.isfinite(matrix).all():
        raise SampleDecodeError(f"{name}: camera matrix holds non-finite values", path=name)
    return matrix


def decode_sample(
    sample_id: int,
    files: RawFiles,
    *,
    depth_dtype: np.dtype | None = None,
    normal_dtype: np.dtype | None = None,
) -> Sample:
    """Decode the five files of a sample.

    ``depth_dtype``/``normal_dtype`` are the store's pixel types: float16 EXR pixels are
    widened to a float32 store exactly; pixels wider than the store holds are an error
    (the store never loses precision).
    """
    names = facts.sample_member_names(sample_id)
    rgb = decode_png(_need(files, "rgb", sample_id), names["rgb"], 3)
    alpha = decode_png(_need(files, "alpha", sample_id), names["alpha"], None)
    depth = read_depth_exr(_need(files, "depth", sample_id), names["depth"]).pixels
    _check_shape(names["depth"], depth, None)
    normal = read_normal_exr(_need(files, "normal", sample_id), names["normal"]).pixels
    _check_shape(names["normal"], normal, 3)
    depth = _as_store_type(names["depth"], depth, depth_dtype)
    normal = _as_store_type(names["normal"], normal, normal_dtype)
    intrinsics = decode_camera(_need(files, "cam", sample_id), names["cam"])
    return Sample(
        sample_id=sample_id, rgb=rgb, alpha=alpha, depth=depth, normal=normal, intrinsics=intrinsics
    )


def _as_store_type(name: str, pixels: np.ndarray, want: np.dtype | None) -> np.ndarray:
    """EXR pixels in the store's type: the same, or widened exactly (float16 -> float32)."""
    if want is None or pixels.dtype == want:
        return pixels
    want = np.dtype(want)
    if pixels.dtype.kind == want.kind == "f" and want.itemsize > pixels.dtype.itemsize:
        return pixels.astype(want)
    raise SampleDecodeError(
        f"{name}: EXR pixels are {pixels.dtype}, wider than the {want} this store "
        "holds (chosen from the first sample of each part); convert into a new store, "
        f"which will hold {pixels.dtype}",
        path=name,
    )
