"""A map-style dataset over store samples, safe to pickle into DataLoader workers.

It holds only the store URL, its storage options and the sample ids: each worker
process reopens the store on first access. No torch import: any loader that calls
``len()`` and ``[i]`` works (``torch.utils.data.DataLoader(dataset, num_workers=N)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import facts
from ..errors import ConfigError

if TYPE_CHECKING:
    from .store import SynthHumanStore

DEFAULT_SPLITS: Mapping[str, float] = {"train": 0.9, "val": 0.05, "test": 0.05}


class StoreDataset:
    """Samples of a store, by position. ``dataset[i]`` is ``store.sample(sample_ids[i])``."""

    def __init__(
        self,
        url: str,
        sample_ids: Sequence[int] | np.ndarray,
        storage_options: dict[str, Any] | None = None,
        *,
        store: SynthHumanStore | None = None,
    ) -> None:
        self.url = url
        self.storage_options = storage_options
        self.sample_ids = np.asarray(sample_ids, dtype=np.int64)
        self._store = store

    def __len__(self) -> int:
        return int(self.sample_ids.size)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        return self.store.sample(int(self.sample_ids[index]))

    @property
    def store(self) -> SynthHumanStore:
        if self._store is None:
            from .store import SynthHumanStore

            self._store = SynthHumanStore(self.url, self.storage_options)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "sample_ids": self.sample_ids,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["url"], state["sample_ids"], state["storage_options"])

    def __repr__(self) -> str:
        return f"StoreDataset({self.url!r}, {len(self)} samples)"

    def split(
        self, fractions: Mapping[str, float] = DEFAULT_SPLITS, seed: int = 0
    ) -> dict[str, StoreDataset]:
        """Deterministic seeded splits, stratified by scenario (see :func:`split_ids`)."""
        parts = split_ids(self.sample_ids, fractions, seed)
        return {
            name: StoreDataset(self.url, ids, self.storage_options, store=self._store)
            for name, ids in parts.items()
        }


def split_ids(
    sample_ids: np.ndarray, fractions: Mapping[str, float], seed: int = 0
) -> dict[str, np.ndarray]:
    """Split ids so each split holds the same share of every scenario.

    Within each scenario the ids are sorted, shuffled with ``numpy.random.default_rng(seed)``
    and cut at the cumulative fractions (rounded); each split's ids come back sorted. The
    same ids, fractions and seed always give the same splits.
    """
    if not fractions or any(f < 0 for f in fractions.values()):
        raise ConfigError(f"split fractions must be non-negative, got {dict(fractions)}")
    total = sum(fractions.values())
    if not 0.999 <= total <= 1.001:
        raise ConfigError(f"split fractions must add up to 1, got {total:g} ({dict(fractions)})")
    ids = np.unique(np.asarray(sample_ids, dtype=np.int64))
    out: dict[str, list[np.ndarray]] = {name: [] for name in fractions}
    for k, scenario in enumerate(facts.SCENARIOS):
        span = facts.scenario_range(scenario)
        group = ids[(ids >= span.start) & (ids < span.stop)]
        order = np.random.default_rng([seed, k]).permutation(group.size)
        cuts = np.round(np.cumsum(list(fractions.values())) * group.size).astype(int)
        start = 0
        for name, stop in zip(fractions, cuts, strict=True):
            out[name].append(group[order[start:stop]])
            start = stop
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in out.items()}
