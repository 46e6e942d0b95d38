"""Pre- and post-processing of the DAViD reference runtime, reproduced step for step.

Pre-processing (one BGR image of any size to the model's 512 x 512 input)::

    uint8 / 255 | uint16 / 65535 | float  ->  float32, clipped to [0, 1]
    pad to a square, replicating the border: the short side gets (long - short) // 2
        on top (left) and the rest on the bottom (right)
    while both sides > 3 * 512: cv2.pyrDown
    cv2.resize to 512 x 512, INTER_LINEAR;  HWC -> CHW

Post-processing (each 512 x 512 output back to the input's size)::

    cv2.resize to the padded square, INTER_CUBIC;  crop the padding
    depth: as the model gives it (relative, larger = nearer)
    normal: divided by (per-pixel length + 1e-8)
    foreground: clipped to [0, 1]

The same OpenCV calls in the same order as the reference, so results match it to float
rounding. Batching happens outside: ``preprocess`` is per image and cheap (< 1 ms for a
SynthHuman-sized image).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ImageDecodeError, ModelError
from ..facts import MODEL_INPUT_SIZE

PYRAMID_LIMIT = 3 * MODEL_INPUT_SIZE
"""Images whose padded sides both exceed this are halved with cv2.pyrDown first."""
NORMAL_EPS = 1e-8


@dataclass(frozen=True, kw_only=True)
class PadInfo:
    """Where an image sits inside its padded square, to undo the padding afterwards."""

    height: int
    width: int
    top: int
    bottom: int
    left: int
    right: int

    @property
    def side(self) -> int:
        """Side of the padded square."""
        return self.height + self.top + self.bottom


def pad_info(height: int, width: int) -> PadInfo:
    """The reference runtime's padding of an ``height`` x ``width`` image to a square."""
    if height < width:
        top = (width - height) // 2
        return PadInfo(
            height=height, width=width, top=top, bottom=width - height - top, left=0, right=0
        )
    left = (height - width) // 2
    return PadInfo(
        height=height, width=width, top=0, bottom=0, left=left, right=height - width - left
    )


def _check(image_bgr: np.ndarray) -> None:
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ImageDecodeError(
            f"the DAViD models take 3-channel BGR images; got an array of shape {image_bgr.shape} "
            "(decode files with david_data.infer.decode_image, which converts grey and BGRA)"
        )
    if image_bgr.dtype not in (np.uint8, np.uint16, np.float16, np.float32, np.float64):
        raise ImageDecodeError(
            f"unsupported pixel type {image_bgr.dtype}: expected uint8, uint16 or float in [0, 1]"
        )


def to_float(image_bgr: np.ndarray) -> np.ndarray:
    """Scale an (H, W, 3) image to float32 in [0, 1] (uint8 / 255, uint16 / 65535, clip)."""
    _check(image_bgr)
    if image_bgr.dtype in (np.uint8, np.uint16):
        scaled = image_bgr.astype(np.float32)
        scaled /= 255 if image_bgr.dtype == np.uint8 else 65535
        return scaled  # already within [0, 1]: clipping would change nothing
    clipped: np.ndarray = np.clip(image_bgr, 0, 1).astype(np.float32)  # numpy's stubs: Any
    return clipped


def preprocess(image_bgr: np.ndarray) -> tuple[np.ndarray, PadInfo]:
    """Turn one BGR image into the model input (3, 512, 512) float32 and its PadInfo."""
    _check(image_bgr)
    info = pad_info(image_bgr.shape[0], image_bgr.shape[1])
    # Replicate-padding copies pixels, so padding before the elementwise scaling gives the
    # reference's values exactly while scaling fewer bytes' worth of work in float.
    square = cv2.copyMakeBorder(
        image_bgr, info.top, info.bottom, info.left, info.right, borderType=cv2.BORDER_REPLICATE
    )
    square = to_float(square)
    while square.shape[0] > PYRAMID_LIMIT and square.shape[1] > PYRAMID_LIMIT:
        square = cv2.pyrDown(square)
    size = MODEL_INPUT_SIZE
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized.transpose(2, 0, 1)), info


def _back_to_image(plane: np.ndarray, info: PadInfo) -> np.ndarray:
    """Resize a (512, 512[, C]) output to the padded square (bicubic) and crop the padding."""
    side = info.side
    square = cv2.resize(plane, (side, side), interpolation=cv2.INTER_CUBIC)
    return square[info.top : side - info.bottom, info.left : side - info.right]


def _plane(raw: np.ndarray, task: str, channels: int) -> np.ndarray:
    """One output without batch axis as (512, 512) or (512, 512, C) float32."""
    array = np.asarray(raw, dtype=np.float32)
    size = MODEL_INPUT_SIZE
    if channels == 1 and array.shape in ((size, size), (1, size, size)):
        return array.reshape(size, size)
    if channels == 3 and array.shape == (3, size, size):
        return array.transpose(1, 2, 0)
    expected = "(512, 512) or (1, 512, 512)" if channels == 1 else "(3, 512, 512)"
    raise ModelError(f"{task} output has shape {array.shape} per image; expected {expected}")


def postprocess_depth(raw: np.ndarray, info: PadInfo) -> np.ndarray:
    """Relative depth (H, W) float32 at the input size; larger = nearer, as the model gives it."""
    return np.ascontiguousarray(_back_to_image(_plane(raw, "depth", 1), info))


def postprocess_normal(raw: np.ndarray, info: PadInfo) -> np.ndarray:
    """Unit surface normals (H, W, 3) float32 at the input size."""
    planes = _plane(raw, "normal", 3).transpose(2, 0, 1)  # checked; (3, 512, 512) view
    # The reference's steps on faster layouts, bit for bit: the (512, 512, 3) image built with
    # cv2.merge (not a strided copy), the same 3-channel resize, then |n| as np.linalg.norm
    # computes it, (x*x + y*y) + z*z in float32, and the division, on whole planes instead of
    # along a 3-long axis (~2.6x faster at 512 x 384).
    side = info.side
    square = cv2.resize(cv2.merge(list(planes)), (side, side), interpolation=cv2.INTER_CUBIC)
    x, y, z = cv2.split(square[info.top : side - info.bottom, info.left : side - info.right])
    length = x * x
    length += y * y
    length += z * z
    np.sqrt(length, out=length)
    length += np.float32(NORMAL_EPS)
    normals: np.ndarray = cv2.merge([x / length, y / length, z / length])
    return normals


def postprocess_foreground(raw: np.ndarray, info: PadInfo) -> np.ndarray:
    """Soft foreground (H, W) float32 in [0, 1] at the input size."""
    return np.ascontiguousarray(np.clip(_back_to_image(_plane(raw, "foreground", 1), info), 0, 1))


POSTPROCESSORS = {
    "depth": postprocess_depth,
    "normal": postprocess_normal,
    "foreground": postprocess_foreground,
}


def postprocess(outputs: Mapping[str, np.ndarray], info: PadInfo) -> dict[str, np.ndarray]:
    """Post-process one image's outputs (task -> raw array without batch axis).

    Returns task -> array at the input size: depth (H, W), normal (H, W, 3) unit,
    foreground (H, W) in [0, 1], all float32.
    """
    result: dict[str, np.ndarray] = {}
    for task, raw in outputs.items():
        if task not in POSTPROCESSORS:
            raise ModelError(
                f"unknown output task {task!r}; expected one of {', '.join(POSTPROCESSORS)}"
            )
        result[task] = POSTPROCESSORS[task](raw, info)
    return result
