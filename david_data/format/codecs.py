"""How each array's chunks are encoded: the ``fast`` and ``compact`` profiles.

A :class:`ChunkCodec` encodes one sample's array to bytes and back with the same
bytes zarr-python would read through the codecs it declares (``zarr_codecs``), so the
lean shard writer and the direct reader skip zarr's per-chunk overhead while the store
stays standard Zarr v3. Choices come from ``benchmarks/bench_convert.py`` on this
machine class (its codec table prints size, encode and decode per array):

- ``fast`` (default): codecs of the Zarr v3 spec only (zarr-python, tensorstore and any
  Zarr v3 reader open it). Blosc-LZ4-HC at level 4 (:data:`FAST_LZ4HC_LEVEL`) for every
  array: rgb and alpha as they are, depth/normal after a byte shuffle (the float halves'
  high bytes compress, the noise-like low bytes do not). LZ4-HC spends encoding time to
  find longer matches and decodes as fast as LZ4: 1.27x the source zip on synthetic data
  (level 3: 1.28x; Blosc-LZ4 level 9 before: 1.40x, levels 1/5: 1.51x), and a random read
  costs ~0.7 ms of CPU a sample (~0.35 ms of it decoding), ~11x less than decoding its
  PNG/EXR. Alpha and intrinsics left
  zstd-1, whose per-call context cost more than LZ4-HC decoding them (alpha is 3.2 KB a
  sample instead of 1.7): that saves ~0.13 ms of a random read's ~0.9, LZ4-HC's smaller
  chunks ~0.04 ms. The price is conversion CPU: encoding takes ~17 ms a sample (LZ4
  level 9: ~3 ms), so a conversion unit costs ~28 ms of CPU a sample instead of ~12
  (~3.5x decoding the PNG/EXR instead of ~1.5x). ``benchmarks/bench_convert.py`` measures
  all of it beside the profile before and level 3. Shuffling the normals by whole pixels
  (typesize 6) saves ~4 % more but more than halves their decoding speed (blosc has no
  SIMD unshuffle for 6 bytes); blosc's own ``blosclz`` and larger blocks gain nothing. Stores
  written before keep their codecs (``zarr.json``).
- ``compact``: lossless image codecs: WebP lossless (method 0) for rgb, JPEG-LS for alpha
  and for the 16-bit views of float16 depth/normal; float32 depth/normal use blosc-zstd
  with byte shuffle (JPEG-LS on the noise-like low halves of float32 gains nothing).
  An archive profile: ~1.5-2x smaller, but a random read decodes slower than the source
  PNG/EXR.

Every chunk of a store written now ends with its CRC-32C: :class:`Checksummed` wraps the
profile's codec and declares Zarr v3's ``crc32c`` as the last codec of the chain, so a
flipped bit on disk is an error for every reader (this package, zarr-python,
tensorstore), never a wrong pixel. Stores written before have no checksum and still read
(:func:`codec_from_zarr` rebuilds whatever chain ``zarr.json`` declares). The check costs
~0.12 ms of CPU per sample (:mod:`.checksum`).

Blosc runs on the calling thread (``numthreads=1``): conversion and loader workers are
processes already, and blosc's own threads would only add wake-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from ..errors import ConfigError, StoreError
from .checksum import crc32c, strip_checked
from .imagecodec import JPEGLS_NAME, WEBP_NAME

# zarr, numcodecs and imagecodecs load on first encode or decode: opening a store to
# query its metadata needs none of them.

PROFILES = ("fast", "compact")
DEFAULT_PROFILE = "fast"
ARRAYS = ("rgb", "alpha", "depth", "normal", "intrinsics")
CRC32C_NAME = "crc32c"


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
        from numcodecs import zstd

        return bytes(
            zstd.compress(np.ascontiguousarray(array, array.dtype.newbyteorder("<")), self.level)
        )

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        from numcodecs import zstd

        out = np.empty(shape, dtype=np.dtype(dtype).newbyteorder("<"))
        zstd.decompress(data, out)  # straight into a writable array: no copy
        return out

    def zarr_codecs(self) -> dict[str, Any]:
        from zarr.codecs import BytesCodec, ZstdCodec

        return {
            "serializer": BytesCodec(endian="little"),
            "compressors": (ZstdCodec(level=self.level),),
        }


SHUFFLES = ("noshuffle", "shuffle", "bitshuffle")
"""Blosc's shuffle filters, by their Zarr v3 names (their index is blosc's own number)."""


@dataclass(frozen=True, kw_only=True)
class BloscBytes:
    cname: str = "zstd"
    clevel: int = 1
    typesize: int = 4
    shuffle: str = "shuffle"

    def encode(self, array: np.ndarray) -> bytes:
        import imagecodecs

        data = np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
        if data.dtype.itemsize != self.typesize:  # e.g. 6: a float16 normal's whole pixel
            data = data.reshape(-1).view(f"V{self.typesize}")
        return bytes(
            imagecodecs.blosc_encode(
                # an array, not bytes: imagecodecs shuffles by its item size (its
                # ``typesize`` argument is ignored for arrays)
                data,  # type: ignore[arg-type]
                self.clevel,
                compressor=self.cname,
                shuffle=SHUFFLES.index(self.shuffle),
                typesize=self.typesize,
                numthreads=1,
            )
        )

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        import imagecodecs

        out = np.empty(shape, dtype=np.dtype(dtype).newbyteorder("<"))
        # straight into a writable array (as flat bytes: the decoder wants one dimension)
        imagecodecs.blosc_decode(data, numthreads=1, out=out.reshape(-1).view(np.uint8).data)
        return out

    def zarr_codecs(self) -> dict[str, Any]:
        from zarr.codecs import BloscCodec, BytesCodec

        blosc = BloscCodec(
            cname=self.cname,  # type: ignore[arg-type]  # a plain str such as "zstd"
            clevel=self.clevel,
            shuffle=self.shuffle,  # type: ignore[arg-type]  # one of SHUFFLES
            typesize=self.typesize,
            blocksize=0,
        )
        return {"serializer": BytesCodec(endian="little"), "compressors": (blosc,)}


@dataclass(frozen=True, kw_only=True)
class WebpLossless:
    method: int = 0

    def encode(self, array: np.ndarray) -> bytes:
        from .imagecodec import webp_encode

        return webp_encode(array, self.method)

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        from .imagecodec import webp_decode

        return webp_decode(data, shape)

    def zarr_codecs(self) -> dict[str, Any]:
        from .zarr_codecs import WebpLosslessCodec

        return {"serializer": WebpLosslessCodec(method=self.method), "compressors": ()}


@dataclass(frozen=True, kw_only=True)
class JpegLs:
    def encode(self, array: np.ndarray) -> bytes:
        from .imagecodec import jpegls_encode

        return jpegls_encode(array)

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        from .imagecodec import jpegls_decode

        return jpegls_decode(data, np.dtype(dtype), shape)

    def zarr_codecs(self) -> dict[str, Any]:
        from .zarr_codecs import JpeglsCodec

        return {"serializer": JpeglsCodec(), "compressors": ()}


@dataclass(frozen=True, kw_only=True)
class Checksummed:
    """Another chunk codec followed by Zarr v3's ``crc32c``: the encoded chunk, then its
    CRC-32C. Decoding checks it first and raises
    :class:`~david_data.errors.VerificationError` when the bytes changed."""

    inner: ChunkCodec

    def encode(self, array: np.ndarray) -> bytes:
        data = self.inner.encode(array)
        return data + crc32c(data)

    def decode(self, data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        # a view of the bytes before the checksum, no copy: every inner decoder (zstd,
        # blosc, WebP, JPEG-LS) reads any buffer
        return self.inner.decode(cast(bytes, strip_checked(data)), dtype, shape)

    def zarr_codecs(self) -> dict[str, Any]:
        from zarr.codecs import Crc32cCodec

        codecs = self.inner.zarr_codecs()
        return {**codecs, "compressors": (*codecs["compressors"], Crc32cCodec())}


def profile_codecs(profile: str, dtypes: dict[str, np.dtype]) -> dict[str, ChunkCodec]:
    """The chunk codec of every array of a new store of ``profile``, given the arrays'
    dtypes: the profile's codec, checksummed."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    chosen = fast_codecs(dtypes) if profile == "fast" else _compact_codecs(dtypes)
    return {name: Checksummed(inner=codec) for name, codec in chosen.items()}


def _compact_codecs(dtypes: dict[str, np.dtype]) -> dict[str, ChunkCodec]:
    """The ``compact`` profile's codecs (see the module docstring), before the checksum."""
    zstd: ChunkCodec = ZstdBytes(level=1)
    chosen: dict[str, ChunkCodec] = {
        "rgb": WebpLossless(method=0),
        "alpha": JpegLs(),
        "intrinsics": zstd,
    }
    for name in ("depth", "normal"):
        dtype = np.dtype(dtypes[name])
        chosen[name] = (
            JpegLs()
            if dtype.itemsize == 2
            else BloscBytes(cname="zstd", clevel=3, typesize=dtype.itemsize)
        )
    return chosen


FAST_LZ4HC_LEVEL = 4
"""The ``fast`` profile's LZ4-HC level (the module docstring says why 4)."""


def fast_codecs(dtypes: dict[str, np.dtype]) -> dict[str, ChunkCodec]:
    """The ``fast`` profile's codecs (see the module docstring), before the checksum."""

    def lz4hc(typesize: int, shuffle: str) -> BloscBytes:
        return BloscBytes(
            cname="lz4hc", clevel=FAST_LZ4HC_LEVEL, typesize=typesize, shuffle=shuffle
        )

    chosen: dict[str, ChunkCodec] = {
        "rgb": lz4hc(1, "noshuffle"),
        "alpha": lz4hc(1, "noshuffle"),
        "intrinsics": lz4hc(8, "noshuffle"),  # 72 bytes: blosc stores them as they are
    }
    for name in ("depth", "normal"):
        chosen[name] = lz4hc(np.dtype(dtypes[name]).itemsize, "shuffle")
    return chosen


def codec_from_zarr(inner: list[dict[str, Any]], where: str) -> ChunkCodec:
    """The chunk codec matching a shard's inner codec list from ``zarr.json``."""
    names = [c["name"] for c in inner]
    if names[-1:] == [CRC32C_NAME] and len(names) > 1:
        return Checksummed(inner=codec_from_zarr(inner[:-1], where))
    config = [c.get("configuration", {}) for c in inner]
    if names == ["bytes", "zstd"] and config[0].get("endian", "little") == "little":
        return ZstdBytes(level=int(config[1].get("level", 0)))
    if names == ["bytes", "blosc"] and config[0].get("endian", "little") == "little":
        c = config[1]
        if c.get("shuffle") in SHUFFLES:
            return BloscBytes(
                cname=c["cname"],
                clevel=int(c["clevel"]),
                typesize=int(c.get("typesize") or 1),
                shuffle=c["shuffle"],
            )
    if names == [WEBP_NAME]:
        return WebpLossless(method=int(config[0].get("method", 0)))
    if names == [JPEGLS_NAME]:
        return JpegLs()
    raise StoreError(
        f"{where}: chunk codecs {names} are not ones david-data writes; "
        "open this store with zarr.open_group instead",
        path=where,
    )
