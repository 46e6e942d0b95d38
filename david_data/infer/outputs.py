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

EXR files are uncompressed, the PNG compressed at libdeflate's fastest level; both lossless
(``_encode`` says why, with the measurements). Depth uses the channel name ``Y``, the EXR
convention for a single luminance-like plane and the first name
``david_data.exr.read_depth_exr`` looks for.

Writing is two steps so that syncs are shared: :func:`write_outputs` puts each file in
place atomically (temp file + rename; one PUT on object stores) without syncing it (the
batch path writes local files around the page cache, as they are synced anyway), and
:func:`commit_outputs`, given the sets of several inputs (one model call's), syncs all
their files to disk, and only then writes their markers. So a marker ``NAME.<S>.<K>.done``
is never on disk before the files it vouches for (a power cut may lose a marker: that
input is simply computed again), and means the set is complete for model ``S`` and that
very input. Re-running a set first deletes its other markers (another model, a replaced
input, or the older ``NAME.<S>.done`` form without a key), durably, so a half-rewritten set
is never taken for complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from fsspec import AbstractFileSystem

from ..direct_io import write_new_direct
from ..fsutil import is_local, join
from ._encode import exr_uncompressed, png_grey16

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
    return exr_uncompressed(np.asarray(depth, dtype=np.float32), DEPTH_CHANNEL)


def encode_normal(normal: np.ndarray) -> bytes:
    """(H, W, 3) unit normals -> float32 X, Y, Z EXR bytes."""
    return exr_uncompressed(np.asarray(normal, dtype=np.float32), NORMAL_CHANNELS)


def encode_foreground(foreground: np.ndarray) -> bytes:
    """(H, W) soft mask in [0, 1] -> 16-bit grey PNG bytes (value * 65535, rounded)."""
    mask = np.clip(np.asarray(foreground, dtype=np.float32), 0.0, 1.0)
    mask *= 65535.0
    return png_grey16(np.rint(mask, out=mask).astype(np.uint16))


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


@dataclass(frozen=True, kw_only=True)
class WrittenSet:
    """One input's output files, in place but not yet synced or committed."""

    paths: dict[str, str]
    """Kind -> full path of each file written."""
    marker_path: str
    marker: bytes


def _put(fs: AbstractFileSystem, path: str, data: bytes, *, direct: bool = False) -> None:
    """Write ``data`` to ``path`` atomically without syncing it (a temp file renamed into
    place, or one PUT on an object store, which is durable once it returns); ``direct``:
    around the page cache where the file system allows (``direct_io``)."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if not (direct and write_new_direct(tmp, data)):
            with open(tmp, "wb") as handle:
                handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _sync(path: str) -> None:
    """Flush a local file or folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_outputs(
    fs: AbstractFileSystem,
    root: str,
    rel: str,
    files: Mapping[str, bytes],
    *,
    model_sha256: str,
    input_url: str,
    input_key: str,
    stale_markers: Iterable[str] = (),
    direct: bool = False,
) -> WrittenSet:
    """Put one input's encoded outputs in place under ``root`` (each atomically, unsynced);
    :func:`commit_outputs` makes them durable and writes the marker. ``direct``: for a
    caller that commits them, write local files around the page cache (``direct_io``: the
    bytes reach the disk once, with no copy into the cache for the sync to write back).

    ``stale_markers`` (relative names of other markers for this input) are deleted first,
    and the deletion is synced before any file is replaced.
    """
    stale = [join(root, name) for name in stale_markers]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
    if stale and is_local(fs):
        for folder in {os.path.dirname(p) for p in stale}:
            _sync(folder)
    names = output_names(rel, files)
    paths = {kind: join(root, names[kind]) for kind in files}
    for kind, data in files.items():
        _put(fs, paths[kind], data, direct=direct)
    marker = {
        "input": input_url,
        "input_key": input_key,
        "model_sha256": model_sha256,
        "outputs": sorted(names.values()),
        "written_at": time.time(),
    }
    return WrittenSet(
        paths=paths,
        marker_path=join(root, marker_name(rel, model_sha256, input_key)),
        marker=json.dumps(marker).encode(),
    )


def commit_outputs(fs: AbstractFileSystem, sets: Sequence[WrittenSet]) -> None:
    """Commit several inputs' written outputs: sync every file of every set, then write each
    set's marker. One pass over a group of inputs instead of a sync per file as it is
    written (the kernel writes back a group's cached pages together; files written around
    the cache have only their sizes and names left to sync), and no sync of the markers:
    losing one only means recomputing its input."""
    if is_local(fs):
        files = [path for written in sets for path in written.paths.values()]
        for path in files:
            _sync(path)
        for folder in {os.path.dirname(path) for path in files}:
            _sync(folder)  # the renames, where the file system keeps them apart
    for written in sets:
        _put(fs, written.marker_path, written.marker)
