"""Training-grade loading from a store: deterministic, resumable, distributed-aware.

``store.loader(batch_size, ...)`` gives a :class:`StoreLoader` (needs the optional
extra: ``pip install 'david-data[torch]'``; torch is imported only when a loader is
made). Its pieces, each usable on its own:

- :mod:`.order`: the epoch order (shard-aware shuffle) and its split over ranks, plain
  numpy; the loader's state is a position in it.
- :mod:`.batch`: reads a batch of samples as numpy arrays (what a worker does).
- :mod:`.cache`: the local cache of whole shard objects for stores on object storage.
"""

from __future__ import annotations

from .batch import BatchSource
from .cache import DEFAULT_CACHE_LIMIT, CachedFileSystem, ShardCache, default_cache_dir
from .order import SHUFFLE_WINDOW, Batch, Segment, epoch_order, rank_batches, replay
from .torch_loader import StoreLoader

__all__ = [
    "DEFAULT_CACHE_LIMIT",
    "SHUFFLE_WINDOW",
    "Batch",
    "BatchSource",
    "CachedFileSystem",
    "Segment",
    "ShardCache",
    "StoreLoader",
    "default_cache_dir",
    "epoch_order",
    "rank_batches",
    "replay",
]
