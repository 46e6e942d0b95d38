"""Writing a store's objects: one whole shard object atomically, and the temporaries a
killed writer left beside objects about to be rewritten. Shared by the conversion
(:mod:`david_data.convert.write`) and the runs of a store (:mod:`david_data.store.runs`)."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
from collections.abc import Sequence

from ..fsutil import atomic_open, atomic_write_bytes, is_local
from .layout import StoreLayout

logger = logging.getLogger(__name__)


def write_shard_object(
    layout: StoreLayout, path: str, buffers: Sequence[bytes | memoryview]
) -> None:
    """Write one shard object atomically: locally its buffers in turn into the temporary
    file (no ~100 MB join to copy first), on object stores as one PUT."""
    if is_local(layout.fs):
        with atomic_open(layout.fs, path) as handle:
            handle.writelines(buffers)
    else:
        atomic_write_bytes(layout.fs, path, b"".join(buffers))


def remove_stale_temporaries(layout: StoreLayout, paths: list[str]) -> None:
    """Remove ``PATH.<id>.tmp`` files a killed run left beside the objects about to be
    written. Only local stores have them: object stores get each object in one PUT."""
    if not is_local(layout.fs):
        return
    for path in paths:
        for stale in glob.glob(glob.escape(path) + ".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
                logger.info("removed stale temporary %s", stale)
