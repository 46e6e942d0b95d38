"""What a plan learns about each part beyond its directory: its SHA-256 (to notice a part
replaced since its shards were written) and its EXR pixel types (to choose the store's
dtypes: widest wins, float16 -> float32 is exact).

A part's SHA-256 comes from the mirror's ``manifest.json`` when it lists the part at its
size, else from the store's cache ``parts/NAME.json`` when the part's size and mtime/ETag
are unchanged, else by reading the part (in threads; hashlib releases the GIL). Checksums
computed here are returned as cache records, written by the run, never by the plan.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SampleDecodeError, VerificationError
from ..format.layout import StoreLayout
from ..sources.base import PartSource
from ..sources.parts import RawFiles

logger = logging.getLogger(__name__)

FIRST_SAMPLE_TRIES = 20
"""Samples tried per part to read its pixel types (the first may be damaged)."""


def checksums(
    parts: list[PartSource], layout: StoreLayout | None, *, threads: int = 4
) -> tuple[dict[str, str | None], dict[str, bytes]]:
    """SHA-256 of each part (None for a loose-file folder), and the cache records
    (part name -> bytes, for ``parts/NAME.json``) of those computed now."""
    found: dict[str, str | None] = {}
    to_hash: list[tuple[PartSource, str]] = []
    for part in parts:
        if not part.is_zip:
            found[part.name] = None
        elif part.recorded_sha256:
            found[part.name] = part.recorded_sha256
        else:
            fingerprint = part.fingerprint()
            cached = _cached(layout, part, fingerprint)
            if cached is not None:
                found[part.name] = cached
            else:
                to_hash.append((part, fingerprint))
    records: dict[str, bytes] = {}
    if to_hash:
        logger.info("computing SHA-256 of %d part(s)", len(to_hash))
        with cf.ThreadPoolExecutor(max(1, min(threads, len(to_hash)))) as pool:
            digests = list(pool.map(lambda item: item[0].sha256(), to_hash))
        for (part, fingerprint), digest in zip(to_hash, digests, strict=True):
            found[part.name] = digest
            record = {"part": part.name, "url": part.url, "fingerprint": fingerprint}
            records[part.name] = json.dumps({**record, "sha256": digest}, indent=1).encode()
    return found, records


def _cached(layout: StoreLayout | None, part: PartSource, fingerprint: str) -> str | None:
    if layout is None:
        return None
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        record: dict[str, Any] = json.loads(layout.fs.cat_file(layout.part_cache_path(part.name)))
        if record["fingerprint"] == fingerprint:
            return str(record["sha256"])
    return None


def pixel_types(
    part: PartSource, *, first: Sequence[int] = ()
) -> tuple[dict[str, np.dtype] | None, tuple[int, RawFiles] | None]:
    """Pixel types of depth and normal from the part's first decodable sample, trying the
    ids in ``first`` (those about to be converted) first (None when none of the first few
    decodes: the part's samples are then recorded as errors), and that sample's id and
    verified files, which a run may take instead of reading them again."""
    from .decode import decode_sample  # OpenCV and OpenEXR: only when a part is probed

    order = list(dict.fromkeys([*first, *part.sample_ids]))
    for sid in order[:FIRST_SAMPLE_TRIES]:
        for _, files in part.read_samples([sid]):
            try:
                sample = decode_sample(sid, files)
            except (SampleDecodeError, VerificationError) as exc:
                logger.info("%s: cannot take pixel types from sample %d: %s", part.name, sid, exc)
                continue
            return {"depth": sample.depth.dtype, "normal": sample.normal.dtype}, (sid, files)
    return None, None


def widest(types: dict[str, dict[str, np.dtype]]) -> dict[str, np.dtype]:
    """Per array, the widest pixel type any part needs (``types``: part -> array -> dtype)."""
    out: dict[str, np.dtype] = {}
    for needed in types.values():
        for name, dtype in needed.items():
            if name not in out or np.dtype(dtype).itemsize > out[name].itemsize:
                out[name] = np.dtype(dtype)
    return out
