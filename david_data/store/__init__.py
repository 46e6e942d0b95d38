"""Read and query converted SynthHuman stores (the reader of :mod:`david_data.format`).

``open_store(url)`` gives a :class:`SynthHumanStore`: ``len``, ``sample_ids``,
``sample(id)``, ``read_batch(ids)``, ``query(sql)`` (DuckDB, table ``samples``, read-only),
``subset(sql_or_ids)`` (a picklable map-style dataset with seeded stratified ``split``),
``runs``/``run(name)``/``covered(name)``/``sample(id, run=...)`` (model predictions stored
beside the ground truth, and their per-sample metrics as SQL table ``metrics``: :mod:`.runs`).
Comparing a store with its source is :func:`david_data.convert.verify_store.verify_store`.
This package never imports :mod:`david_data.convert` (nor OpenCV or OpenEXR).
"""

from __future__ import annotations

from .store import StoreDataset, SynthHumanStore, open_store, split_ids

__all__ = [
    "StoreDataset",
    "SynthHumanStore",
    "open_store",
    "split_ids",
]
