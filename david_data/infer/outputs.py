"""Output naming, encoding and atomic writing for batch inference.

For an input ``REL/NAME.EXT`` with key ``K`` (inputs.py: a fingerprint of its size and
modification time or ETag) and a model with SHA-256 ``S``, a job writes under OUTPUT::

    REL/NAME.depth.exr           float32, one channel "Y": the model's relative depth at the
                                 input's size, as the model gives it (larger = nearer)
    REL/NAME.normal.exr          float32, channels "X", "Y", "Z": unit surface normals
    REL/NAME.foreground.png      16-bit grey PNG: soft foreground, 0..65535 for 0..1
    REL/NAME.vis.png             (--vis) input | depth | normals | foreground panel
    REL/NAME.<S[:12]>.<K>.done   commit marker (JSON: input URL and identity, model
                                 SHA-256, output names), written last
    _runs/<run id>.parquet       the run's results table (see results.py)

EXR files are uncompressed (see :data:`EXR_COMPRESSION`). Depth uses the channel name
``Y``, the EXR convention for a single luminance-like plane and the first name
``david_data.exr.read_depth_exr`` looks for. Each file is written atomically; the marker
is written after all of them, so a marker ``NAME.<S>.<K>.done`` means the set is complete
for model ``S`` and that very input. Re-running a set first deletes its other markers
(another model, a replaced input, or the older ``NAME.<S>.done`` form without a key), so
a half-rewritten set is never taken for complete.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Mapping

import cv2
import numpy as np
from fsspec import AbstractFileSystem

from ..exr import encode_exr
from ..fsutil import atomic_write_bytes, join

OUTPUT_SUFFIXES = {
    "depth": ".depth.exr",
    "normal": ".normal.exr",
    "foreground": ".foreground.png",
    "vis": ".vis.png",
}
"""Output kind -> file name suffix replacing the input's extension."""
OUTPUT_KINDS = tuple(OUTPUT_SUFFIXES)
DEPTH_CHANNEL = ("Y",)
NORMAL_CHANNELS = ("X", "Y", "Z")
EXR_COMPRESSION = "none"
"""Model outputs are float32 whose low mantissa bits are noise: ZIP shrinks them by only
~2-3 % (measured on tiny-model outputs at 384 x 512) for 5-8x the encoding time, which
would make writing, not the model, the bottleneck for fast models."""
MARKER_SUFFIX = ".done"
SHA_PREFIX_LEN = 12
_MARKER_RE = re.compile(r"^(?P<stem>.+)\.(?P<sha>[0-9a-f]{12})(?:\.(?P<key>[0-9a-f]{8}))?\.done$")


def output_stem(rel: str) -> str:
    """``REL/NAME.EXT`` -> ``REL/NAME`` (a name without extension is kept)."""
    folder, _, name = rel.rpartition("/")
    dot = name.rfind(".")
    stem = name[:dot] if dot > 0 else name
    return f"{folder}/{stem}" if folder else stem


def output_names(rel: str, kinds: Iterable[str]) -> dict[str, str]:
    """Relative output file names of one input, by kind."""
    stem = output_stem(rel)
    return {kind: stem + OUTPUT_SUFFIXES[kind] for kind in kinds}


def marker_name(rel: str, model_sha256: str, input_key: str) -> str:
    """Relative name of the commit marker of one input's outputs for one model."""
    return f"{output_stem(rel)}.{model_sha256[:SHA_PREFIX_LEN]}.{input_key}{MARKER_SUFFIX}"


def parse_marker(name: str) -> tuple[str, str, str | None] | None:
    """``(stem, sha prefix, input key)`` of a marker's relative name (the key is None in
    markers written before inputs had keys), or None for other files."""
    match = _MARKER_RE.match(name)
    return (match.group("stem"), match.group("sha"), match.group("key")) if match else None


def encode_depth(depth: np.ndarray) -> bytes:
    """(H, W) relative depth -> float32 one-channel EXR bytes."""
    return encode_exr(
        np.asarray(depth, dtype=np.float32), DEPTH_CHANNEL, compression=EXR_COMPRESSION
    )


def encode_normal(normal: np.ndarray) -> bytes:
    """(H, W, 3) unit normals -> float32 X, Y, Z EXR bytes."""
    return encode_exr(
        np.asarray(normal, dtype=np.float32), NORMAL_CHANNELS, compression=EXR_COMPRESSION
    )


def encode_foreground(foreground: np.ndarray) -> bytes:
    """(H, W) soft mask in [0, 1] -> 16-bit grey PNG bytes (value * 65535, rounded)."""
    mask = np.round(np.clip(np.asarray(foreground, dtype=np.float32), 0.0, 1.0) * 65535.0)
    ok, buf = cv2.imencode(".png", mask.astype(np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"OpenCV could not encode a foreground mask of shape {mask.shape}")
    return buf.tobytes()


def decode_foreground(data: bytes) -> np.ndarray:
    """16-bit foreground PNG bytes -> (H, W) float32 in [0, 1] (for tests and readers)."""
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.dtype != np.uint16 or mask.ndim != 2:
        raise ValueError("not a 16-bit grey foreground PNG")
    return mask.astype(np.float32) / 65535.0


def encode_outputs(
    outputs: Mapping[str, np.ndarray], image_bgr: np.ndarray | None = None
) -> dict[str, bytes]:
    """Encode one input's post-processed outputs; with ``image_bgr`` also the vis panel."""
    encoders = {"depth": encode_depth, "normal": encode_normal, "foreground": encode_foreground}
    files = {kind: encoders[kind](value) for kind, value in outputs.items()}
    if image_bgr is not None:
        from ..vis import encode_png, prediction_panel

        files["vis"] = encode_png(prediction_panel(image_bgr, outputs))
    return files


def write_output_set(
    fs: AbstractFileSystem,
    root: str,
    rel: str,
    files: Mapping[str, bytes],
    *,
    model_sha256: str,
    input_url: str,
    input_key: str,
    stale_markers: Iterable[str] = (),
) -> dict[str, str]:
    """Write one input's encoded outputs under ``root``, then its commit marker.

    ``stale_markers`` (relative names of other models' markers for this input) are
    deleted first. Returns kind -> full path of each file written.
    """
    for stale in stale_markers:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(join(root, stale))
    names = output_names(rel, files)
    paths = {kind: join(root, names[kind]) for kind in files}
    for kind, data in files.items():
        atomic_write_bytes(fs, paths[kind], data)
    marker = {
        "input": input_url,
        "input_key": input_key,
        "model_sha256": model_sha256,
        "outputs": sorted(names.values()),
        "written_at": time.time(),
    }
    marker_path = join(root, marker_name(rel, model_sha256, input_key))
    atomic_write_bytes(fs, marker_path, json.dumps(marker).encode())
    return paths
