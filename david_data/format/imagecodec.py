"""Lossless image codecs (from ``imagecodecs``) for one chunk, pure numpy in and out,
and the names stores give them in ``zarr.json`` (part of the format: see
:mod:`.zarr_codecs`). ``imagecodecs`` loads on the first encode or decode.

- ``webp``: 8-bit RGB, WebP lossless (fast to decode, ~1.5x smaller than PNG here).
- ``jpegls``: JPEG-LS, lossless, for 8- or 16-bit planes. Float images are stored as
  their 16-bit *views* (float16 -> one uint16 plane per channel, float32 -> two), so the
  bits come back exactly.
"""

from __future__ import annotations

from typing import Final

import numpy as np

WEBP_NAME: Final = "david_data.webp_lossless"
JPEGLS_NAME: Final = "david_data.jpegls"


def webp_encode(image: np.ndarray, method: int) -> bytes:
    """Encode a (H, W, 3) uint8 image as lossless WebP."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"WebP lossless takes (H, W, 3) uint8, got {image.shape} {image.dtype}")
    import imagecodecs

    return bytes(imagecodecs.webp_encode(np.ascontiguousarray(image), lossless=True, method=method))


def webp_decode(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    import imagecodecs

    return np.asarray(imagecodecs.webp_decode(data)).reshape(shape)


def _planes(image: np.ndarray) -> np.ndarray:
    """A single (rows, W) uint8/uint16 plane JPEG-LS can hold.

    16-bit views of float pixels are laid out planar (one H x W plane per 16-bit half of
    each channel, stacked vertically): CharLS takes only 1, 3 or 4 interleaved components.
    """
    height, width = image.shape[:2]
    if image.dtype == np.uint8 and image.ndim == 2:
        return np.ascontiguousarray(image)
    if (
        image.dtype.kind not in "fu"
        or image.dtype.itemsize not in (2, 4)
        and image.dtype != np.uint8
    ):
        raise ValueError(f"JPEG-LS chunks must be uint8, uint16 or float, got {image.dtype}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(np.moveaxis(image, -1, 0)).reshape(-1, width)
    halves = np.ascontiguousarray(image).view(np.uint16).reshape(height, width, -1)
    return np.ascontiguousarray(np.moveaxis(halves, -1, 0)).reshape(-1, width)


def jpegls_encode(image: np.ndarray) -> bytes:
    """Encode a (H, W) or (H, W, C) image losslessly with JPEG-LS (floats via 16-bit views)."""
    import imagecodecs

    planes = _planes(image)
    # Noise-like planes (low halves of float32) can come out slightly larger than raw.
    return bytes(imagecodecs.jpegls_encode(planes, level=0, out=2 * planes.nbytes + 65536))


def jpegls_decode(data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`jpegls_encode` for an image of ``shape`` and ``dtype``."""
    import imagecodecs

    planes = np.asarray(imagecodecs.jpegls_decode(data))
    height, width = shape[0], shape[1]
    if planes.dtype == np.uint8 and len(shape) == 2:
        return planes.reshape(shape)
    stacked = planes.reshape(-1, height, width)
    return np.ascontiguousarray(np.moveaxis(stacked, 0, -1)).view(dtype).reshape(shape)
