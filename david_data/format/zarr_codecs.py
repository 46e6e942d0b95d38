"""Zarr v3 array-to-bytes codecs for the ``compact`` profile, registered on import.

zarr-python finds them through the ``zarr.codecs`` entry points in ``pyproject.toml``
(these names and module paths are part of the format: stores written earlier name them),
so ``zarr.open_group`` reads a compact store without importing david_data first. Names carry the ``david_data.`` prefix so they never clash
with codecs of the Zarr spec. Chunks are (1, H, W[, C]): one sample each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

from .imagecodec import (
    JPEGLS_NAME,
    WEBP_NAME,
    jpegls_decode,
    jpegls_encode,
    webp_decode,
    webp_encode,
)

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec


def _image(chunk: NDBuffer) -> np.ndarray:
    array = np.asarray(chunk.as_numpy_array())
    return array.reshape(array.shape[1:]) if array.ndim > 2 and array.shape[0] == 1 else array


def _image_shape(spec: ArraySpec) -> tuple[int, ...]:
    shape = tuple(spec.shape)
    return shape[1:] if len(shape) > 2 and shape[0] == 1 else shape


@dataclass(frozen=True)
class WebpLosslessCodec(ArrayBytesCodec):
    """One (1, H, W, 3) uint8 chunk as a lossless WebP image."""

    is_fixed_size = False
    method: int = 0

    def __init__(self, *, method: int = 0) -> None:
        object.__setattr__(self, "method", int(method))

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, config = parse_named_configuration(data, WEBP_NAME, require_configuration=False)
        return cls(**(config or {}))  # type: ignore[arg-type]  # zarr's JSON config; __init__ applies int()

    def to_dict(self) -> dict[str, JSON]:
        return {"name": WEBP_NAME, "configuration": {"method": self.method}}

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        image = webp_decode(chunk_bytes.to_bytes(), _image_shape(chunk_spec))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(image.reshape(chunk_spec.shape))

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return chunk_spec.prototype.buffer.from_bytes(webp_encode(_image(chunk_array), self.method))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class JpeglsCodec(ArrayBytesCodec):
    """One (1, H, W[, C]) chunk as a lossless JPEG-LS image (floats via 16-bit views)."""

    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        parse_named_configuration(data, JPEGLS_NAME, require_configuration=False)
        return cls()

    def to_dict(self) -> dict[str, JSON]:
        return {"name": JPEGLS_NAME}

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        dtype = chunk_spec.dtype.to_native_dtype()
        image = jpegls_decode(chunk_bytes.to_bytes(), dtype, _image_shape(chunk_spec))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(image.reshape(chunk_spec.shape))

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return chunk_spec.prototype.buffer.from_bytes(jpegls_encode(_image(chunk_array)))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError


def register() -> None:
    """Register the codecs with zarr (idempotent)."""
    register_codec(WEBP_NAME, WebpLosslessCodec)
    register_codec(JPEGLS_NAME, JpeglsCodec)


register()

__all__: list[Any] = ["JpeglsCodec", "WebpLosslessCodec", "register"]
