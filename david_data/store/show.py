"""Pictures of samples: one sample's panel or a labelled grid of the samples an SQL query
selects from a store. (Drawing a sample straight from a mirror or zip is the CLI's job:
it decodes with :mod:`david_data.convert`, which this package does not import.)"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import vis
from ..errors import ConfigError
from .output import write_output


def sample_picture(arrays: dict[str, Any], sample_id: int) -> np.ndarray:
    """The panel of one sample's arrays: RGB | depth | foreground | normals (BGR uint8)."""
    return vis.sample_panel(
        arrays["rgb"], arrays["alpha"], arrays["depth"], arrays["normal"], title=f"sample {sample_id}"
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
        raise ConfigError(f"--limit must be at least 1 (got {limit})")
    if columns < 1:
        raise ConfigError(f"--columns must be at least 1 (got {columns})")
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
    return write_output(url, vis.encode_png(image), storage_options)
