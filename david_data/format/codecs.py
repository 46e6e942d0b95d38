"""How each array's chunks are encoded: the ``fast`` and ``compact`` profiles.

A :class:`ChunkCodec` encodes one sample's array to bytes and back with the same
bytes zarr-python would read through the codecs it declares (``zarr_codecs``), so the
lean shard writer and the direct reader skip zarr's per-chunk overhead while the store
stays standard Zarr v3. Choices come from ``benchmarks/bench_convert.py`` on this
machine class (see the docs in ``david_data/convert/__init__.py``):

- ``fast`` (default): zstd level 1 on raw little-endian bytes for every array. Decoding
  costs ~0.3-0.6 ms per field, ~10x cheaper than PNG/EXR; the store is ~1.2-1.3x the zip.
- ``compact``: lossless image codecs: WebP lossless (method 0) for rgb, JPEG-LS for alpha
  and for the 16-bit views of float16 depth/normal; float32 depth/normal use blosc-zstd
  with byte shuffle (JPEG-LS on the noise-like low halves of float32 gains nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numcodecs
import numpy as np
from numcodecs import zstd as _zstd
from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec

from ..errors import ConfigError, StoreError
from . import zarr_codecs
from .imagecodec import jpegls_decode, jpegls_encode, webp_decode, webp_encode

PROFILES = ("fast", "compact")
DEFAULT_PROFILE = "fast"
ARRAYS = ("rgb", "alpha", "depth", "normal", "intrinsics")


class ChunkCodec(Protocol):
    """Encodes one sample's array (no leading chunk axis) to bytes and back."""

    def encode(self, array: np.ndarray) -> bytes: ...
    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray: ...
    def zarr_codecs(self) -> dict[str, Any]:
        """``serializer``/``compressors`` arguments for ``zarr.create_array``."""
        ...


@dataclass(frozen=True, kw_only=True)
class ZstdBytes:
    level: int = 1

    def encode(self, array: np.ndarray) -> bytes:
        return bytes(
            _zstd.compress(np.ascontiguousarray(array, array.dtype.newbyteorder("<")), self.level)
        )

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        return np.frombuffer(
            _zstd.decompress(data), dtype=np.dtype(dtype).newbyteorder("<")
        ).reshape(shape)

    def zarr_codecs(self) -> dict[str, Any]:
        return {
            "serializer": BytesCodec(endian="little"),
            "compressors": (ZstdCodec(level=self.level),),
        }


@dataclass(frozen=True, kw_only=True)
class BloscBytes:
    cname: str = "zstd"
    clevel: int = 1
    typesize: int = 4

    def _codec(self) -> numcodecs.Blosc:
        return numcodecs.Blosc(
            cname=self.cname, clevel=self.clevel, shuffle=numcodecs.Blosc.SHUFFLE, blocksize=0
        )

    def encode(self, array: np.ndarray) -> bytes:
        return bytes(
            self._codec().encode(np.ascontiguousarray(array, array.dtype.newbyteorder("<")))
        )

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        raw = self._codec().decode(data)
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)

    def zarr_codecs(self) -> dict[str, Any]:
        blosc = BloscCodec(
            cname=self.cname,  # type: ignore[arg-type]  # a plain str such as "zstd"
            clevel=self.clevel,
            shuffle="shuffle",
            typesize=self.typesize,
            blocksize=0,
        )
        return {"serializer": BytesCodec(endian="little"), "compressors": (blosc,)}


@dataclass(frozen=True, kw_only=True)
class WebpLossless:
    method: int = 0

    def encode(self, array: np.ndarray) -> bytes:
        return webp_encode(array, self.method)

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        return webp_decode(data, shape)

    def zarr_codecs(self) -> dict[str, Any]:
        return {"serializer": zarr_codecs.WebpLosslessCodec(method=self.method), "compressors": ()}


@dataclass(frozen=True, kw_only=True)
class JpegLs:
    def encode(self, array: np.ndarray) -> bytes:
        return jpegls_encode(array)

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        return jpegls_decode(data, np.dtype(dtype), shape)

    def zarr_codecs(self) -> dict[str, Any]:
        return {"serializer": zarr_codecs.JpeglsCodec(), "compressors": ()}


def profile_codecs(profile: str, dtypes: dict[str, np.dtype]) -> dict[str, ChunkCodec]:
    """The chunk codec of every array for ``profile``, given the arrays' dtypes."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    fast: ChunkCodec = ZstdBytes(level=1)
    if profile == "fast":
        return dict.fromkeys(ARRAYS, fast)
    chosen: dict[str, ChunkCodec] = {
        "rgb": WebpLossless(method=0),
        "alpha": JpegLs(),
        "intrinsics": fast,
    }
    for name in ("depth", "normal"):
        dtype = np.dtype(dtypes[name])
        chosen[name] = (
            JpegLs()
            if dtype.itemsize == 2
            else BloscBytes(cname="zstd", clevel=3, typesize=dtype.itemsize)
        )
    return chosen


def codec_from_zarr(inner: list[dict[str, Any]], where: str) -> ChunkCodec:
    """The chunk codec matching a shard's inner codec list from ``zarr.json``."""
    names = [c["name"] for c in inner]
    config = [c.get("configuration", {}) for c in inner]
    if names == ["bytes", "zstd"] and config[0].get("endian", "little") == "little":
        return ZstdBytes(level=int(config[1].get("level", 0)))
    if names == ["bytes", "blosc"] and config[0].get("endian", "little") == "little":
        c = config[1]
        if c.get("shuffle") == "shuffle":
            return BloscBytes(
                cname=c["cname"], clevel=int(c["clevel"]), typesize=int(c["typesize"])
            )
    if names == [zarr_codecs.WEBP_NAME]:
        return WebpLossless(method=int(config[0].get("method", 0)))
    if names == [zarr_codecs.JPEGLS_NAME]:
        return JpegLs()
    raise StoreError(
        f"{where}: chunk codecs {names} are not ones david-data writes; "
        "open this store with zarr.open_group instead",
        path=where,
    )
