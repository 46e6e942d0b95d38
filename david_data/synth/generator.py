"""Synthetic SynthHuman samples and parts, in the real layout.

A sample is built from one of nine real 384 x 512 renders (three per scenario, cut
from the DAViD preview grids) chosen by the sample's scenario, flipped and shifted by
up to 16 px and scaled in depth, all derived from a hash of its id: the same id and
options always give the same bytes. Alpha, depth and normals come from ellipsoids
ray-cast over the person in the crop (see ``_geometry``), so they agree with each other:

- ``rgb``    (512, 384, 3) uint8, RGB order (the PNG is written BGR through OpenCV)
- ``alpha``  (512, 384) uint8, soft 1..255 edge ramp inside the silhouette, 0 outside
- ``depth``  (512, 384) float32 z-depth in cm (about 45 to 330), 65504 exactly where alpha == 0
- ``normal`` (512, 384, 3) float32, X right, Y up, Z toward the camera, unit length
  where alpha > 0 and (0, 0, 0) on the background
- ``intrinsics`` (3, 3) float64 ``fx 0 cx / 0 fy cy / 0 0 1`` (fx = fy, 520 to 850 px by
  scenario; cx, cy near the image centre, moved by the shift); written so that
  ``numpy.loadtxt`` gives the same float64 values back

A part is a zip of such samples, five members per sample (rgb, alpha, depth, normal,
cam, in that order), written sample by sample to any binary stream, local path or
fsspec URL.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from ..errors import ConfigError
from ..exr import DEPTH_CHANNELS, NORMAL_CHANNELS, encode_exr
from ..facts import (
    DEPTH_BACKGROUND,
    EXTRACT_FOLDER,
    HEIGHT,
    NUM_SAMPLES,
    SAMPLE_PART,
    SAMPLES_PER_PART,
    WIDTH,
    is_part_name,
    part_index,
    sample_member_names,
    scenario_of,
)
from ..fsutil import atomic_open, atomic_write_bytes, join, resolve, to_url
from ..progress import NullProgress, Progress, TaskHandle
from . import _assets, _geometry
from ._zipwriter import DEFLATED, STORED, ZipStreamWriter

logger = logging.getLogger(__name__)

MAX_SHIFT = 16
"""Largest shift of the crop, in pixels, in each direction."""
PNG_LEVEL = 1
"""zlib level of the PNGs (OpenCV's default, fixed here so output never drifts)."""

_DEPTH_NAMES = tuple(names[0] for names in DEPTH_CHANNELS)
_NORMAL_NAMES = tuple(NORMAL_CHANNELS)
_PIXEL_TYPES = {"half": np.float16, "float": np.float32}
_COMPRESSIONS = {"stored": STORED, "deflated": DEFLATED}
_NO_PROGRESS = NullProgress()


@dataclass(frozen=True, kw_only=True)
class SynthOptions:
    """How the generated files look where the real data leaves a choice open."""

    folder: str | None = None
    """Folder the members sit in inside the zip (``None``: at the top level)."""
    depth_channel: str = "Y"
    """Name of the depth EXR's single channel: ``Y``, ``R``, ``Z`` or ``depth``."""
    normal_channels: tuple[str, str, str] = ("X", "Y", "Z")
    """Names of the normal EXR's channels: ``("X", "Y", "Z")`` or ``("R", "G", "B")``."""
    pixel_type: str = "half"
    """EXR pixel type: ``half`` (float16) or ``float`` (float32)."""
    zip64: bool = False
    """Write ZIP64 records everywhere, as a part larger than 4 GiB has them."""
    compression: str = "stored"
    """Zip member compression: ``stored`` or ``deflated``."""

    def __post_init__(self) -> None:
        if self.folder is not None:
            folder = self.folder.strip("/")
            if not folder or any(p in ("", ".", "..") for p in folder.split("/")) or "\\" in folder:
                raise ConfigError(
                    f"folder {self.folder!r} is not a safe relative folder name; use e.g. 'SynthHuman'"
                )
            object.__setattr__(self, "folder", folder)
        if self.depth_channel not in _DEPTH_NAMES:
            raise ConfigError(
                f"depth channel {self.depth_channel!r} is not one of {', '.join(_DEPTH_NAMES)}"
            )
        channels = tuple(self.normal_channels)
        if channels not in _NORMAL_NAMES:
            choices = " or ".join(",".join(c) for c in _NORMAL_NAMES)
            raise ConfigError(f"normal channels {channels} are not {choices}")
        object.__setattr__(self, "normal_channels", channels)
        if self.pixel_type not in _PIXEL_TYPES:
            raise ConfigError(f"pixel type {self.pixel_type!r} is not 'half' or 'float'")
        if self.compression not in _COMPRESSIONS:
            raise ConfigError(f"compression {self.compression!r} is not 'stored' or 'deflated'")

    def member_path(self, file_name: str) -> str:
        """Path of a sample file inside the zip (the folder prepended, if any)."""
        return f"{self.folder}/{file_name}" if self.folder else file_name


@dataclass(frozen=True, kw_only=True)
class PartInfo:
    """What :func:`write_part` wrote."""

    path: str | None
    """Local path or URL of the part; None when written to a caller's stream."""
    size: int
    sha256: str
    sample_ids: tuple[int, ...]
    members: tuple[str, ...]
    """Member paths in the order written."""


@dataclass(frozen=True, kw_only=True)
class _Variant:
    tile: _assets.Tile
    flip: bool
    dx: int
    dy: int
    scale: float


@dataclass(frozen=True, kw_only=True)
class _Canvas:
    rgb: np.ndarray
    maps: _geometry.Maps


def _variant(sample_id: int) -> _Variant:
    # A hash, not numpy's RNG: its streams may change between numpy releases.
    digest = hashlib.blake2b(f"david-data synth {sample_id}".encode(), digest_size=8).digest()
    tiles = _assets.tiles_for(scenario_of(sample_id))
    span = 2 * MAX_SHIFT + 1
    return _Variant(
        tile=tiles[int.from_bytes(digest[:2], "little") % len(tiles)],
        flip=bool(digest[2] & 1),
        dx=digest[3] % span - MAX_SHIFT,
        dy=digest[4] % span - MAX_SHIFT,
        scale=0.9 + 0.2 * int.from_bytes(digest[5:7], "little") / 65535,
    )


@cache
def _canvas(tile: _assets.Tile) -> _Canvas:
    """The tile padded by MAX_SHIFT on every side (mirrored), with its maps rendered once."""
    m = MAX_SHIFT
    rgb = cv2.copyMakeBorder(_assets.load_rgb(tile.file), m, m, m, m, cv2.BORDER_REFLECT_101)
    maps = _geometry.render(
        tile.blobs,
        rgb=rgb,
        fx=tile.fx,
        cx=WIDTH / 2 + m,
        cy=HEIGHT / 2 + m,
        z0=tile.z0,
        offset=(m, m),
    )
    for array in (rgb, maps.alpha, maps.depth, maps.normal):
        array.flags.writeable = False  # shared by every sample of this tile
    return _Canvas(rgb=rgb, maps=maps)


def _check_id(sample_id: int) -> int:
    if isinstance(sample_id, bool) or not isinstance(sample_id, int | np.integer):
        raise ConfigError(f"sample id {sample_id!r} is not an integer")
    sample_id = int(sample_id)
    if not 0 <= sample_id < NUM_SAMPLES:
        raise ConfigError(f"sample id {sample_id} is out of range 0 ... {NUM_SAMPLES - 1}")
    return sample_id


def sample_arrays(sample_id: int) -> dict[str, np.ndarray]:
    """The arrays of one synthetic sample (see the module docstring for layout)."""
    variant = _variant(_check_id(sample_id))
    canvas = _canvas(variant.tile)
    y0, x0 = MAX_SHIFT + variant.dy, MAX_SHIFT + variant.dx
    window = (slice(y0, y0 + HEIGHT), slice(x0, x0 + WIDTH))
    cx, cy = WIDTH / 2 - variant.dx, HEIGHT / 2 - variant.dy
    rgb, alpha = canvas.rgb[window], canvas.maps.alpha[window]
    depth, normal = canvas.maps.depth[window], canvas.maps.normal[window]
    if variant.flip:
        rgb, alpha, depth, normal = rgb[:, ::-1], alpha[:, ::-1], depth[:, ::-1], normal[:, ::-1]
        normal = np.concatenate(
            [np.subtract(0.0, normal[..., :1], dtype=np.float32), normal[..., 1:]], axis=-1
        )
        cx = WIDTH - 1 - cx
    foreground = alpha > 0
    depth = np.where(foreground, depth * np.float32(variant.scale), np.float32(DEPTH_BACKGROUND))
    fx = variant.tile.fx
    return {
        "rgb": np.ascontiguousarray(rgb),
        "alpha": np.ascontiguousarray(alpha),
        "depth": np.ascontiguousarray(depth, dtype=np.float32),
        "normal": np.ascontiguousarray(normal, dtype=np.float32),
        "intrinsics": np.array([[fx, 0.0, cx], [0.0, fx, cy], [0.0, 0.0, 1.0]], dtype=np.float64),
    }


def format_intrinsics(matrix: np.ndarray) -> bytes:
    """Text of a ``cam_*.txt`` file: three lines of three numbers, exact for ``numpy.loadtxt``."""
    return "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in matrix).encode("ascii")


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a PNG")
    return data.tobytes()


def encode_sample(sample_id: int, options: SynthOptions = SynthOptions()) -> dict[str, bytes]:
    """The five files of one sample, keyed by file name (``rgb_0000007.png`` ...), in order."""
    arrays = sample_arrays(sample_id)
    names = sample_member_names(int(sample_id))
    dtype = _PIXEL_TYPES[options.pixel_type]
    return {
        names["rgb"]: _png(cv2.cvtColor(arrays["rgb"], cv2.COLOR_RGB2BGR)),
        names["alpha"]: _png(arrays["alpha"]),
        names["depth"]: encode_exr(arrays["depth"].astype(dtype), (options.depth_channel,)),
        names["normal"]: encode_exr(arrays["normal"].astype(dtype), options.normal_channels),
        names["cam"]: format_intrinsics(arrays["intrinsics"]),
    }


def _plan_overrides(
    sample_ids: Sequence[int], options: SynthOptions, overrides: Mapping[str, bytes | None]
) -> dict[str, bytes]:
    """Check overrides up front; return the extra members (keys matching no sample file)."""
    generated = {name for sid in sample_ids for name in sample_member_names(sid).values()}
    extras: dict[str, bytes] = {}
    for name, data in overrides.items():
        if name in generated:
            continue
        if data is None:
            raise ConfigError(
                f"override {name!r} leaves out a member the part does not hold; "
                "use a file name such as 'depth_0000005.exr' of one of its samples"
            )
        extras[name if "/" in name else options.member_path(name)] = data
    return extras


def _write_zip(
    stream: IO[bytes],
    sample_ids: Sequence[int],
    options: SynthOptions,
    overrides: Mapping[str, bytes | None],
    advance: Callable[[], None],
) -> tuple[ZipStreamWriter, list[str]]:
    extras = _plan_overrides(sample_ids, options, overrides)
    writer = ZipStreamWriter(
        stream, method=_COMPRESSIONS[options.compression], force_zip64=options.zip64
    )
    members: list[str] = []
    for sample_id in sample_ids:
        for name, data in encode_sample(sample_id, options).items():
            if name in overrides:
                replacement = overrides[name]
                if replacement is None:
                    continue
                data = replacement
            path = options.member_path(name)
            writer.add(path, data)
            members.append(path)
        advance()
    for path, data in extras.items():
        writer.add(path, data)
        members.append(path)
    writer.close()
    return writer, members


def _check_ids(sample_ids: Iterable[int]) -> tuple[int, ...]:
    ids = tuple(_check_id(s) for s in sample_ids)
    if len(set(ids)) != len(ids):
        raise ConfigError("sample ids repeat; a part holds each sample once")
    return ids


def write_part(
    dest: str | os.PathLike[str] | IO[bytes],
    sample_ids: Iterable[int],
    options: SynthOptions = SynthOptions(),
    overrides: Mapping[str, bytes | None] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
    progress: Progress = _NO_PROGRESS,
) -> PartInfo:
    """Write a zip part holding ``sample_ids``, one sample at a time (memory stays flat).

    ``dest`` is a writable binary stream, a local path or an fsspec URL; a path or URL
    appears only once complete. ``overrides`` maps a sample file name (``depth_0000005.exr``)
    to replacement bytes, or to None to leave that member out; a name matching no sample
    file adds an extra member (inside ``options.folder``, or verbatim if it contains
    ``/``, e.g. ``../evil.txt``), so tests can build corrupt, incomplete or unsafe parts.
    """
    ids = _check_ids(sample_ids)
    overrides = overrides or {}
    label = dest if isinstance(dest, str | os.PathLike) else getattr(dest, "name", "stream")
    handle = progress.task(f"synth {os.path.basename(str(label))}", total=len(ids), unit="samples")
    info = _write_part(dest, ids, options, overrides, storage_options, handle)
    handle.finish()
    return info


def _write_part(
    dest: str | os.PathLike[str] | IO[bytes],
    ids: tuple[int, ...],
    options: SynthOptions,
    overrides: Mapping[str, bytes | None],
    storage_options: dict[str, Any] | None,
    handle: TaskHandle,
) -> PartInfo:
    path: str | None = None
    if isinstance(dest, str | os.PathLike):
        fs, fs_path = resolve(os.fspath(dest), storage_options)
        with atomic_open(fs, fs_path) as stream:
            writer, members = _write_zip(stream, ids, options, overrides, handle.advance)
        path = to_url(fs, fs_path)
    else:
        writer, members = _write_zip(dest, ids, options, overrides, handle.advance)
    logger.debug("wrote %s: %d samples, %d bytes", path or "stream", len(ids), writer.size)
    return PartInfo(
        path=path,
        size=writer.size,
        sha256=writer.sha256.hexdigest(),
        sample_ids=ids,
        members=tuple(members),
    )


def part_sample_ids(name: str, samples_per_part: int) -> range:
    """The ids a synthetic part holds: the first ``samples_per_part`` of its real range.

    Part k holds ids ``k*5000 ...``; ``SynthHuman_sample.zip`` holds id 0 alone.
    """
    if not is_part_name(name):
        raise ConfigError(f"{name!r} is not a part name such as 'SynthHuman_0007.zip'")
    if not 1 <= samples_per_part <= SAMPLES_PER_PART:
        raise ConfigError(
            f"samples per part must be 1 ... {SAMPLES_PER_PART}, got {samples_per_part}"
        )
    if os.path.basename(name) == SAMPLE_PART:
        return range(0, 1)
    start = (part_index(name) or 0) * SAMPLES_PER_PART
    return range(start, min(start + samples_per_part, NUM_SAMPLES))


def write_parts(
    dest_dir: str | os.PathLike[str],
    part_names: Sequence[str],
    samples_per_part: int,
    options: SynthOptions = SynthOptions(),
    *,
    progress: Progress = _NO_PROGRESS,
) -> list[Path]:
    """Write synthetic parts named ``part_names`` into the local folder ``dest_dir``."""
    plan = [(name, part_sample_ids(name, samples_per_part)) for name in part_names]
    root = Path(dest_dir)
    root.mkdir(parents=True, exist_ok=True)
    handle = progress.task(
        f"synth {len(plan)} part(s)", total=sum(len(r) for _, r in plan), unit="samples"
    )
    written = []
    for name, ids in plan:
        path = root / name
        _write_part(path, tuple(ids), options, {}, None, handle)
        written.append(path)
    handle.finish()
    return written


def write_extracted(
    dest_dir: str | os.PathLike[str],
    sample_ids: Iterable[int],
    options: SynthOptions = SynthOptions(),
    *,
    storage_options: dict[str, Any] | None = None,
    progress: Progress = _NO_PROGRESS,
) -> str:
    """Write samples as the official script leaves them: ``dest_dir/SynthHuman/<files>``.

    With ``options.folder`` the files go one level deeper, as unzipping such a part into
    ``SynthHuman/`` gives. Each file is written atomically. Returns the path or URL of
    the ``SynthHuman`` folder.
    """
    ids = _check_ids(sample_ids)
    fs, base = resolve(os.fspath(dest_dir), storage_options)
    root = join(base, EXTRACT_FOLDER)
    handle = progress.task(f"synth {EXTRACT_FOLDER}/", total=len(ids), unit="samples")
    for sample_id in ids:
        for name, data in encode_sample(sample_id, options).items():
            atomic_write_bytes(fs, join(root, options.member_path(name)), data)
        handle.advance()
    handle.finish()
    return to_url(fs, root)
