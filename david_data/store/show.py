"""Pictures of samples: one sample's panel (from a store, a mirror, a zip or an extracted
folder) or a labelled grid of the samples an SQL query selects from a store."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import fsutil, vis
from ..errors import ConfigError, StoreError


def sample_arrays(
    target: str, sample_id: int, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A sample's arrays from a store, or decoded from a mirror, zip or extracted folder."""
    from ..format.layout import open_layout

    try:
        open_layout(target, storage_options)
    except StoreError:
        from ..convert.decode import decode_sample
        from ..convert.source import open_source

        source = open_source(target, storage_options)
        return decode_sample(sample_id, source.read_sample(sample_id)).arrays()
    from . import open_store

    return open_store(target, storage_options).sample(sample_id)


def sample_picture(
    target: str, sample_id: int, storage_options: dict[str, Any] | None = None
) -> np.ndarray:
    """The panel of one sample: RGB | depth | foreground | normals (BGR uint8)."""
    s = sample_arrays(target, sample_id, storage_options)
    return vis.sample_panel(
        s["rgb"], s["alpha"], s["depth"], s["normal"], title=f"sample {sample_id}"
    )


def query_picture(
    store_url: str,
    sql: str,
    *,
    limit: int = 8,
    columns: int = 2,
    storage_options: dict[str, Any] | None = None,
) -> np.ndarray:
    """A labelled grid of the panels of the first ``limit`` samples that ``sql`` selects."""
    from . import open_store

    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    store = open_store(store_url, storage_options)
    ids = list(store.subset(sql).sample_ids[:limit])
    if not ids:
        raise ConfigError(f"the query selects no converted sample: {sql}")
    batch = store.read_batch(ids)
    panels = [
        vis.sample_panel(batch["rgb"][i], batch["alpha"][i], batch["depth"][i], batch["normal"][i])
        for i in range(len(ids))
    ]
    labels = [f"{sid} ({batch['scenario'][i]})" for i, sid in enumerate(ids)]
    return vis.grid(panels, labels, columns=columns)


def write_picture(
    url: str, image: np.ndarray, storage_options: dict[str, Any] | None = None
) -> str:
    """Write ``image`` as a PNG, atomically, to a path or fsspec URL; return where it went."""
    fs, path = fsutil.resolve(url, storage_options)
    fsutil.atomic_write_bytes(fs, path, vis.encode_png(image))
    return fsutil.to_url(fs, path)
