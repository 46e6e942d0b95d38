"""Decode any input image's bytes into the 3-channel BGR array the DAViD runtime takes.

OpenCV decodes PNG, JPEG, TIFF, WebP (and more) with ``IMREAD_UNCHANGED`` so 16-bit
images keep their depth. That flag ignores EXIF orientation, so the orientation tag is
read here (JPEG APP1, PNG ``eXIf``, WebP ``EXIF`` chunk) and applied, as a photo viewer
would; OpenCV's TIFF decoder already honours the TIFF Orientation tag itself. Grey becomes 3 equal channels, grey+alpha and BGRA lose the alpha.
A truncated JPEG decodes "successfully" in libjpeg (grey bottom rows), so JPEG data must
reach its end-of-image marker. Everything else that cannot become a 3-channel image
raises :class:`~david_data.errors.ImageDecodeError` naming the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import cv2
import numpy as np

from ..errors import ImageDecodeError

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode image bytes into an (H, W, 3) BGR array, upright per its EXIF orientation.

    The pixel type is kept: uint8, uint16 or float (float16/64 become float32).
    Raises ImageDecodeError for empty, corrupt, truncated or non-image data and for
    channel counts or pixel types that cannot be made into a BGR image.
    """
    if not data:
        raise ImageDecodeError(f"cannot decode image {name}: the file is empty", path=name)
    if data[:2] == b"\xff\xd8" and not _jpeg_complete(data):
        raise ImageDecodeError(
            f"cannot decode image {name}: the JPEG data is truncated (no end-of-image marker "
            "after the image data); fetch or copy the file again",
            path=name,
        )
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageDecodeError(
            f"cannot decode image {name}: OpenCV failed ({str(exc).strip().splitlines()[-1]})",
            path=name,
        ) from exc
    if image is None or image.size == 0:
        raise ImageDecodeError(
            f"cannot decode image {name}: it is not an image OpenCV can read "
            f"(PNG, JPEG, TIFF, WebP, BMP, ...) or it is corrupt or truncated "
            f"({len(data):,} bytes, starting {data[:8]!r})",
            path=name,
        )
    image = _to_bgr(image, name)
    image = apply_orientation(image, exif_orientation(data))
    return np.ascontiguousarray(image)


def _to_bgr(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype not in SUPPORTED_DTYPES:
        raise ImageDecodeError(
            f"cannot use image {name}: pixel type {image.dtype} is not supported; "
            "expected 8- or 16-bit unsigned integers or floats in [0, 1]",
            path=name,
        )
    if image.dtype in (np.float16, np.float64):
        image = image.astype(np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2] if image.ndim == 3 else -1
    if channels in (1, 2):  # grey, grey + alpha
        return np.repeat(image[:, :, :1], 3, axis=2)
    if channels == 3:
        return image
    if channels == 4:  # BGRA: the alpha is not an input of the models
        return image[:, :, :3]
    raise ImageDecodeError(
        f"cannot use image {name}: it has shape {image.shape}; expected grey, grey+alpha, "
        "BGR or BGRA (1 to 4 channels)",
        path=name,
    )


def _jpeg_markers(data: bytes) -> Iterator[tuple[int, int]]:
    """``(marker, offset of its FF byte)`` of a JPEG's markers, from the first after SOI up
    to the first scan (SOS) or the end of image (EOI), both included.

    Marker segments are skipped by their lengths (APP1 holds an EXIF thumbnail with its
    own markers), fill bytes (FF FF) are passed over, and a byte that starts no marker
    ends the walk.
    """
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        yield marker, i
        if marker in (0xD9, 0xDA):
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length: RSTn, TEM
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")


def _jpeg_complete(data: bytes) -> bool:
    """True when a JPEG's end-of-image marker follows its first scan (entropy-coded data
    never holds FF D9). Bytes after the marker (e.g. a motion photo's video) are allowed.
    """
    for marker, i in _jpeg_markers(data):
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", i) != -1
        if marker == 0xD9:
            return True
    return False


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1 ... 8) of an encoded image; 1 when absent or unreadable."""
    try:
        block = _exif_block(data)
        return _orientation_from_tiff(block) if block else 1
    except (struct.error, IndexError, ValueError):
        return 1


def _exif_block(data: bytes) -> bytes | None:
    """The TIFF-structured EXIF data of a JPEG, PNG or WebP file (None for other formats)."""
    if data[:2] == b"\xff\xd8":
        for marker, i in _jpeg_markers(data):
            if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\0\0":
                return data[i + 10 : i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")]
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 8 <= len(data):
            length = int.from_bytes(data[i : i + 4], "big")
            kind = data[i + 4 : i + 8]
            if kind == b"eXIf":
                return data[i + 8 : i + 8 + length]
            if kind == b"IEND":
                return None
            i += 12 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        i = 12
        while i + 8 <= len(data):
            kind = data[i : i + 4]
            length = int.from_bytes(data[i + 4 : i + 8], "little")
            if kind == b"EXIF":
                block = data[i + 8 : i + 8 + length]
                return block[6:] if block.startswith(b"Exif\0\0") else block
            i += 8 + length + (length & 1)
        return None
    return None


def _orientation_from_tiff(block: bytes) -> int:
    order = {b"II": "<", b"MM": ">"}.get(block[:2])
    if order is None or len(block) < 8:
        return 1
    (ifd,) = struct.unpack(order + "I", block[4:8])
    (count,) = struct.unpack(order + "H", block[ifd : ifd + 2])
    for k in range(count):
        entry = ifd + 2 + 12 * k
        tag, kind, _ = struct.unpack(order + "HHI", block[entry : entry + 8])
        if tag == 0x0112 and kind == 3:  # Orientation, SHORT
            (value,) = struct.unpack(order + "H", block[entry + 8 : entry + 10])
            return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image stored with EXIF ``orientation`` upright (1 = already upright)."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:  # transpose
        return image.swapaxes(0, 1)
    if orientation == 6:  # rotate 90 degrees clockwise
        return image.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:  # transverse
        return image.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:  # rotate 90 degrees counter-clockwise
        return image.swapaxes(0, 1)[::-1]
    return image
