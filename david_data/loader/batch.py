"""Reading one batch of samples as numpy arrays: what a loader worker does (no torch here).

A :class:`BatchSource` holds only the store's address, the fields, the transform and the
cache settings, so it pickles into DataLoader workers; each process opens the store
lazily. Local stores are read in place with the store's shard reader (one ranged read
per chunk); other stores through a :class:`~.cache.ShardCache`, which brings each whole
shard object over with one request and serves the chunk reads from the local copy.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, StoreError
from ..format.codecs import ARRAYS as FIELDS
from ..format.layout import StoreLayout, open_layout
from ..format.reader import ShardReader
from ..fsutil import is_local
from .cache import CachedFileSystem, ShardCache, store_key

Transform = Callable[[dict[str, Any]], dict[str, Any]]
Allocate = Callable[[str, tuple[int, ...], np.dtype], "np.ndarray | None"]
"""``(key, shape, dtype) -> array`` to stack a batch's key into (e.g. shared memory), or
None for a fresh array."""


def parse_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    """The store arrays to read (all of them for None), validated."""
    if fields is None:
        return FIELDS
    if isinstance(fields, str):
        fields = [fields]
    chosen = tuple(dict.fromkeys(fields))
    unknown = [f for f in chosen if f not in FIELDS]
    if unknown or not chosen:
        raise ConfigError(
            f"fields {list(fields)} are not store arrays; choose one or more of {', '.join(FIELDS)}"
        )
    return chosen


def make_cache(layout: StoreLayout, cache_dir: str | Path, limit: int) -> ShardCache:
    key = store_key(layout.url, str(layout.attributes.get("created_at", "")))
    return ShardCache(layout.fs, layout.root, cache_dir, key, limit)


class BatchSource:
    """Reads batches of samples of one store: ``read(ids)`` gives stacked numpy arrays."""

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None,
        fields: tuple[str, ...],
        transform: Transform | None,
        cache_dir: str | Path,
        cache_limit: int,
        runs: tuple[str, ...] = (),
    ) -> None:
        self.url = url
        self.runs = runs
        self._runs: dict[str, Any] | None = None
        self.storage_options = storage_options
        self.fields = fields
        self.transform = transform
        self.cache_dir = cache_dir
        self.cache_limit = cache_limit
        self._layout: StoreLayout | None = None
        self._reader: ShardReader | None = None
        self._cache: ShardCache | None = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_layout=None, _reader=None, _cache=None, _pid=0, _runs=None)
        return state

    def _open(self) -> ShardReader:
        if self._pid != os.getpid():  # forked: the parent's filesystem clients are not fork-safe
            self._layout, self._reader, self._cache, self._pid = None, None, None, os.getpid()
            self._runs = None
        if self._reader is None:
            layout = open_layout(self.url, self.storage_options)
            if not is_local(layout.fs):
                self._cache = make_cache(layout, self.cache_dir, self.cache_limit)
                layout = dataclasses.replace(layout, fs=CachedFileSystem(self._cache))
            self._layout, self._reader = layout, ShardReader(layout)
        return self._reader

    def refresh(self) -> None:
        """Forget what this process learnt about the store's shards (the reader's shard
        indexes, the cache's shard versions), so that shards rewritten since are read
        anew; a loader calls it in each process at each iteration's start."""
        if self._reader is None or self._pid != os.getpid():
            return
        assert self._layout is not None
        self._reader = ShardReader(self._layout)
        self._runs = None
        if self._cache is not None:
            self._cache.forget_versions()

    @property
    def layout(self) -> StoreLayout:
        self._open()
        assert self._layout is not None
        return self._layout

    def prefetch(self, shards: Sequence[int]) -> None:
        """Start fetching the given shards' objects (object stores only; no-op locally)."""
        self._open()
        if self._cache is None or not shards:
            return
        layout = self.layout
        self._cache.prefetch(layout.shard_path(f, s) for s in shards for f in self.fields)

    def _run_arrays(self, unique: np.ndarray) -> dict[str, np.ndarray]:
        """Each run's predictions of ``unique`` (``R/<field>``, NaN where the run does not
        hold the sample) and ``R/covered``."""
        if not self.runs:
            return {}
        if self._runs is None:
            from ..store.runs import RunView, open_run

            store = open_layout(self.url, self.storage_options)
            self._runs = {name: RunView(open_run(store, name)) for name in self.runs}
        out: dict[str, np.ndarray] = {}
        for name, view in self._runs.items():
            arrays, covered = view.read(unique.tolist())
            out.update({f"{name}/{f}": a for f, a in arrays.items()})
            out[f"{name}/covered"] = covered
        return out

    def read(
        self, sample_ids: np.ndarray, allocate: Allocate | None = None
    ) -> dict[str, np.ndarray]:
        """The samples' fields stacked along a new first axis (fresh, writable arrays,
        those ``allocate`` gives where it gives one), after ``transform`` was applied to
        each sample (a dict of its fields and ``sample_id``); ids may repeat. With
        ``runs``, also each run's ``R/<field>`` (NaN where not covered) and ``R/covered``."""
        reader = self._open()
        ids = np.asarray(sample_ids, dtype=np.int64)
        unique, inverse = np.unique(ids, return_inverse=True)
        predicted = self._run_arrays(unique)
        if self._cache is not None:  # whole objects, fetched concurrently, before any read
            layout = self.layout
            shards = sorted({int(s) // layout.shard_size for s in unique})
            self._cache.ensure_all(layout.shard_path(f, s) for s in shards for f in self.fields)
        found = reader.read([int(s) for s in unique], self.fields)
        for sid, arrays in zip(unique, found, strict=True):
            if arrays is None:
                raise StoreError(
                    f"sample {sid} is listed in the metadata of {self.url} but its chunks are "
                    "missing; verify the store with 'david-data verify-store'",
                    sample_id=int(sid),
                )
        if self.transform is None:
            out = {
                name: _stack(name, [found[i][name] for i in inverse], allocate)
                for name in self.fields
            }
            out.update(
                {key: _stack(key, list(a[inverse]), allocate) for key, a in predicted.items()}
            )
            return out
        samples, used = [], set()
        for sid, i in zip(ids, inverse, strict=True):
            arrays = found[i]
            assert arrays is not None
            # the reader's arrays are fresh and writable; a repeated sample gets copies
            sample: dict[str, Any] = {
                n: arrays[n].copy() if i in used else arrays[n] for n in self.fields
            }
            sample.update({key: a[i].copy() for key, a in predicted.items()})
            used.add(i)
            sample["sample_id"] = int(sid)
            samples.append(self.transform(sample))
        return stack_samples(samples, allocate)


def _stack(key: str, values: list[np.ndarray], allocate: Allocate | None) -> np.ndarray:
    """``np.stack(values)``, into what ``allocate`` gives for that key when it gives one
    (a worker stacks straight into shared memory: one copy instead of two)."""
    target = None
    if allocate is not None:
        dtype = np.result_type(*values)
        if dtype.kind in "biuf" and all(v.shape == values[0].shape for v in values):
            target = allocate(key, (len(values), *values[0].shape), dtype)
    return np.stack(values) if target is None else np.stack(values, out=target)


def stack_samples(
    samples: list[dict[str, Any]], allocate: Allocate | None = None
) -> dict[str, np.ndarray]:
    """Stack per-sample values key by key; every sample must have the same keys and shapes."""
    keys = list(samples[0])
    out: dict[str, np.ndarray] = {}
    for key in keys:
        try:
            values = [np.asarray(s[key]) for s in samples]
            out[key] = _stack(key, values, allocate)
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"the transform's outputs cannot be stacked into a batch at key {key!r} ({exc}); "
                "it must return the same keys and array shapes for every sample"
            ) from exc
        if out[key].dtype.kind not in "biuf":
            raise ConfigError(
                f"the transform returned {key!r} as {out[key].dtype}; batches hold numbers "
                "and booleans only (drop the key or encode it as numbers)"
            )
    return out
