"""Read, query and verify converted SynthHuman stores.

``open_store(url)`` gives a :class:`SynthHumanStore`: ``len``, ``sample_ids``,
``sample(id)``, ``read_batch(ids)``, ``query(sql)`` (DuckDB, table ``samples``),
``subset(sql_or_ids)`` (a picklable map-style dataset with seeded stratified ``split``).
``verify_store`` compares a store with its source sample by sample.
"""

from __future__ import annotations

from .dataset import StoreDataset, split_ids
from .store import SynthHumanStore, open_store
from .verify import VerifyReport, verify_store

__all__ = [
    "StoreDataset",
    "SynthHumanStore",
    "VerifyReport",
    "open_store",
    "split_ids",
    "verify_store",
]
