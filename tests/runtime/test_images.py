"""decode_image: formats, bit depths, channel layouts, EXIF orientation, clear errors."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from david_data.errors import ImageDecodeError
from david_data.infer import decode_image


@pytest.fixture(scope="module")
def photo(real_tiles: list[np.ndarray]) -> np.ndarray:
    """An asymmetric 120 x 90 BGR image (portrait) with a marked top-left corner."""
    image = cv2.resize(real_tiles[0], (90, 120), interpolation=cv2.INTER_AREA)
    image[:10, :20] = (0, 0, 255)
    return image


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, image, params or [])
    assert ok, ext
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".png", ".tiff", ".webp", ".bmp"])
def test_lossless_formats_round_trip(photo: np.ndarray, ext: str) -> None:
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else None
    decoded = decode_image(_encode(ext, photo, params), f"photo{ext}")
    assert decoded.dtype == np.uint8 and decoded.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(decoded, photo)


def test_bit_depths_and_channel_layouts(photo: np.ndarray) -> None:
    deep = photo.astype(np.uint16) * 257 + 3
    for ext in (".png", ".tiff"):
        out = decode_image(_encode(ext, deep), f"deep{ext}")
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, deep)
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    out = decode_image(_encode(".png", grey), "grey.png")
    assert out.shape == (*grey.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)
    bgra = np.dstack([photo, np.full(grey.shape, 77, np.uint8)])
    np.testing.assert_array_equal(decode_image(_encode(".png", bgra), "bgra.png"), photo)
    bgra16 = np.dstack([deep, np.zeros(grey.shape, np.uint16)])
    np.testing.assert_array_equal(decode_image(_encode(".png", bgra16), "bgra16.png"), deep)
    floats = photo.astype(np.float32) / 255
    out = decode_image(_encode(".tiff", floats), "float.tiff")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, floats)


def _exif_app1(orientation: int, order: str) -> bytes:
    """An EXIF APP1 segment with one IFD0 entry: Orientation (0x0112, SHORT)."""
    e = "<" if order == "II" else ">"
    value = struct.pack(e + "H", orientation) + b"\0\0"
    tiff = (
        order.encode()
        + struct.pack(e + "HI", 42, 8)
        + struct.pack(e + "H", 2)
        + struct.pack(e + "HHI", 0x010F, 2, 4)
        + b"Cam\0"  # Make, to sit before Orientation
        + struct.pack(e + "HHI", 0x0112, 3, 1)
        + value
        + struct.pack(e + "I", 0)
    )
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


# What EXIF orientation N means for display, in numpy's own terms (independent of images.py).
UPRIGHT = {
    1: lambda x: x,
    2: np.fliplr,
    3: lambda x: np.rot90(x, 2),
    4: np.flipud,
    5: lambda x: np.rot90(np.fliplr(x), 1),  # transpose
    6: lambda x: np.rot90(x, -1),  # rotate 90 degrees clockwise
    7: lambda x: np.rot90(np.fliplr(x), -1),  # transverse
    8: lambda x: np.rot90(x, 1),  # rotate 90 degrees counter-clockwise
}


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_is_applied(photo: np.ndarray, orientation: int, order: str) -> None:
    jpeg = _encode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
    plain = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
    tagged = jpeg[:2] + _exif_app1(orientation, order) + jpeg[2:]
    out = decode_image(tagged, "tagged.jpg")
    np.testing.assert_array_equal(out, UPRIGHT[orientation](plain))
    if orientation == 6:  # the stored top-left marker ends up at the top right
        assert out.shape[:2] == (90, 120)
        assert out[2, -5, 2] > 200 and out[2, 5, 2] < 200


def test_png_exif_chunk_orientation_is_applied(photo: np.ndarray) -> None:
    png = _encode(".png", photo)
    tiff = _exif_app1(8, "MM")[10:]  # the TIFF structure without the APP1/Exif header
    chunk = (
        struct.pack(">I", len(tiff))
        + b"eXIf"
        + tiff
        + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    )
    ihdr_end = 8 + 4 + 4 + 13 + 4
    out = decode_image(png[:ihdr_end] + chunk + png[ihdr_end:], "tagged.png")
    np.testing.assert_array_equal(out, np.rot90(photo, 1))


def _raw_tiff(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    """A minimal uncompressed 8-bit TIFF written by hand (OpenCV's encoder cannot set these tags)."""
    h, w, c = pixels.shape
    data = pixels.tobytes()
    entries = [
        (256, 3, 1, w),
        (257, 3, 1, h),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 2 if c == 3 else 1),
    ]
    entries += [(273, 4, 1, 0)] + ([(274, 3, 1, orientation)] if orientation else [])
    entries += [(277, 3, 1, c), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    out = b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<HHI", tag, kind, count)
        out += packed + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    return out + struct.pack("<I", 0) + data


def _tiff_5_channels() -> bytes:
    return _raw_tiff(np.arange(4 * 4 * 5, dtype=np.uint8).reshape(4, 4, 5))


@pytest.mark.parametrize("orientation", [3, 6, 7, 8])
def test_tiff_orientation_is_applied_once(photo: np.ndarray, orientation: int) -> None:
    """OpenCV's TIFF decoder honours the Orientation tag itself: no second rotation here."""
    rgb = photo[:40, :30, ::-1]
    out = decode_image(_raw_tiff(np.ascontiguousarray(rgb), orientation), "tagged.tiff")
    np.testing.assert_array_equal(out, UPRIGHT[orientation](photo[:40, :30]))


def test_decode_errors_name_the_file(photo: np.ndarray) -> None:
    jpeg = _encode(".jpg", photo)
    png = _encode(".png", photo)
    bad = {
        "empty.jpg": (b"", "empty"),
        "notes.txt": (b"hello, this is not an image\n" * 20, "not an image"),
        "random.png": (np.random.default_rng(1).bytes(5000), "not an image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "headless.jpg": (jpeg[:200], "truncated"),
        "truncated.png": (png[: len(png) // 2], "corrupt or truncated"),
        "int16.tiff": (_encode(".tiff", np.zeros((8, 8), np.int16)), "pixel type int16"),
    }
    for name, (data, reason) in bad.items():
        with pytest.raises(ImageDecodeError, match=reason) as info:
            decode_image(data, f"az://photos/{name}")
        assert f"az://photos/{name}" in str(info.value)
        assert info.value.path == f"az://photos/{name}"


def test_unsupported_channel_count_is_an_error() -> None:
    # OpenCV 5 refuses to decode a 5-channel TIFF at all; either way the error names the file
    with pytest.raises(ImageDecodeError, match="five.tiff"):
        decode_image(_tiff_5_channels(), "five.tiff")
    from david_data.infer.images import _to_bgr

    with pytest.raises(
        ImageDecodeError, match=r"five.tiff: it has shape \(4, 4, 5\); expected grey"
    ):
        _to_bgr(np.zeros((4, 4, 5), np.uint8), "five.tiff")


def test_jpeg_with_trailing_data_is_accepted(photo: np.ndarray) -> None:
    """Bytes after the end-of-image marker (a motion photo's video) do not make it truncated."""
    jpeg = _encode(".jpg", photo)
    out = decode_image(jpeg + b"\0" * 100 + b"ftypmp42" * 50, "motion.jpg")
    np.testing.assert_array_equal(
        out, cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
    )


@pytest.mark.parametrize("ext", [".webp", ".png", ".jpg"])
@pytest.mark.parametrize("orientation", [2, 6, 8])
def test_exif_written_by_opencv_agrees_with_imread_color(
    photo: np.ndarray, ext: str, orientation: int
) -> None:
    """OpenCV's own IMREAD_COLOR honours EXIF (for 8-bit colour): our decode must agree with it."""
    exif = np.frombuffer(_exif_app1(orientation, "II")[10:], np.uint8)
    params = {".webp": [cv2.IMWRITE_WEBP_QUALITY, 101], ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95]}.get(
        ext, []
    )
    ok, buf = cv2.imencodeWithMetadata(ext, photo, [cv2.IMAGE_METADATA_EXIF], [exif], params)
    assert ok
    out = decode_image(buf.tobytes(), f"tagged{ext}")
    np.testing.assert_array_equal(out, cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert out.shape[:2] == (photo.shape[:2] if orientation == 2 else photo.shape[1::-1])
