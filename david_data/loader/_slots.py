"""Reusable shared-memory batch buffers ("slots") of the loader's worker processes.

Why: a worker stacks each batch straight into shared memory for the main process to read.
Fresh shared memory for every batch (about 38 MB for 16 samples of all fields) makes the
worker zero-fill and fault in every page again, and torch hands each new storage over
with a file descriptor (a connection to the worker per storage) that the main process
maps and faults in again: reading a batch cost 2.7 ms a sample into fresh shared memory,
1.5 ms into fresh private memory and 1.45-1.5 ms into shared memory used before
(measured on the 2-core benchmark machine), so with fresh buffers two workers were no
faster than none. Each worker therefore keeps a few slots (one shared storage per batch
key), sends each storage to the main process once (which keeps it mapped), then only
says which slot and generation a batch is in, and fills a slot again once the main
process provably holds no reference to what it last held. With slots, two workers gave
924 samples/s against 561 without (``benchmarks/bench_loader.py``, 800 samples; main
process 0.1 ms a sample instead of 0.3).

Safety, by construction:

- The main process rebuilds a slot's arrays as tensors of their own over its mapping
  (``torch.frombuffer``, so each batch has its own C++ storages), and keeps a
  :class:`~torch.multiprocessing.reductions.StorageWeakRef` of each: every view or
  ``.numpy()`` array of the batch keeps that storage alive. This happens when the batch
  is unpickled (:class:`SlotTag`), whether it is then yielded or dropped by the
  DataLoader (the read-ahead of a stopped iteration).
- :meth:`SlotTracker.released` reports a generation once all its weak references have
  expired; the loader's sampler sends that report with each batch it hands to a worker
  (computed when the DataLoader asks for the next batch). The worker refills a slot only
  when the report names the slot's current generation, so a stale report is harmless.
- A worker never waits for a slot: with none free (a user who keeps every batch) and
  :data:`SLOTS_PER_WORKER` made, it allocates fresh shared memory as before.
- A batch tensor handed on to another process is copied into new shared memory there
  (torch shares a storage it did not allocate itself by copying it).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SLOTS_PER_WORKER = 4
"""Slots a worker makes at most: the DataLoader's read-ahead (2 batches per worker), the
batch being filled and the one the training step holds."""

SlotKey = tuple[str, int]  # (owner, slot index)
Released = dict[SlotKey, int]  # slot -> its generation that the main process no longer holds

_TRACKERS: weakref.WeakValueDictionary[str, SlotTracker] = weakref.WeakValueDictionary()


@dataclass(eq=False)
class _Slot:
    generation: int = 0
    idle: bool = True  # never filled, or its last fill was abandoned (never sent)
    storages: dict[str, Any] = field(default_factory=dict)
    unsent: set[str] = field(default_factory=set)  # keys whose storage the main process lacks


class SlotPool:
    """A worker's slots (made lazily in the worker, so any start method works)."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.owner = os.urandom(8).hex()  # this incarnation: a restarted worker is another
        self.slots: list[_Slot] = []
        self.refills = 0  # fills of a slot filled before (what the pool saves)

    def take(self, released: Released) -> int | None:
        """A slot to fill now (its generation moves on): an idle one, one whose current
        generation the main process released, or a new one below the cap; else None."""
        for index, slot in enumerate(self.slots):
            if slot.idle or released.get((self.owner, index)) == slot.generation:
                self.refills += not slot.idle
                break
        else:
            if len(self.slots) >= SLOTS_PER_WORKER:
                return None
            index, slot = len(self.slots), _Slot()
            self.slots.append(slot)
        slot.generation += 1
        slot.idle = False
        return index

    def abandon(self, index: int) -> None:
        """The fill of slot ``index`` failed: nothing of it was sent, it is free again."""
        self.slots[index].idle = True

    def storage(self, torch: Any, index: int, key: str, nbytes: int) -> Any:
        """Slot ``index``'s shared storage for ``key``, of at least ``nbytes`` (its first
        bytes hold the batch); a smaller one is replaced."""
        slot = self.slots[index]
        storage = slot.storages.get(key)
        if storage is None or storage.nbytes() < nbytes:
            storage = slot.storages[key] = torch.UntypedStorage._new_shared(nbytes)
            slot.unsent.add(key)
        return storage

    def tag(self, index: int, made: dict[str, Any]) -> tuple[dict[str, SlotArray], SlotTag]:
        """What the batch holds instead of the tensors ``made`` in slot ``index``: each
        key's :class:`SlotArray`, and the tag that registers them all in the main process."""
        slot = self.slots[index]
        arrays = {
            key: SlotArray(
                self.pool,
                self.owner,
                index,
                key,
                str(t.dtype).removeprefix("torch."),
                tuple(t.shape),
                slot.storages[key] if key in slot.unsent else None,
            )
            for key, t in made.items()
        }
        slot.unsent.clear()
        return arrays, SlotTag(self.pool, self.owner, index, slot.generation, list(arrays.values()))


class SlotArray:
    """One key of a batch in a slot, as the worker sends it: where it lies, and the
    slot's storage itself the first time the main process needs it."""

    def __init__(
        self,
        pool: str,
        owner: str,
        index: int,
        key: str,
        dtype: str,
        shape: tuple[int, ...],
        storage: Any,
    ) -> None:
        self.args = (pool, owner, index, key, dtype, shape, storage)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _rebuild, self.args


def _rebuild(
    pool: str, owner: str, index: int, key: str, dtype: str, shape: tuple[int, ...], storage: Any
) -> Any:
    """A tensor over the main process's mapping of the slot's storage, with a storage of
    its own (``torch.frombuffer`` over a numpy view of the mapping)."""
    import torch

    tracker = _TRACKERS.get(pool)
    mapped = tracker.map((owner, index), key, storage) if tracker is not None else None
    if mapped is None:
        if storage is None:
            raise RuntimeError(  # cannot happen: a slot's first batch carries its storage
                f"batch key {key!r} lies in a worker's slot whose storage this process never "
                "received; iterate the loader again (its workers start anew)"
            )
        mapped = _full_view(torch, storage)
    kind = getattr(torch, dtype)
    nbytes = int(np.prod(shape)) * kind.itemsize
    if nbytes == 0:
        return torch.empty(shape, dtype=kind)
    return torch.frombuffer(mapped[:nbytes], dtype=kind).view(shape)


def _full_view(torch: Any, storage: Any) -> np.ndarray:
    array: np.ndarray = torch.empty(0, dtype=torch.uint8).set_(storage).numpy()
    return array


class SlotTag:
    """Rides along a batch filled into a slot; unpickled in the main process (after or
    with the batch's own :class:`SlotArray` tensors: the pickler sends each object once),
    it registers the batch's storages with the loader's :class:`SlotTracker`."""

    def __init__(
        self, pool: str, owner: str, index: int, generation: int, arrays: list[SlotArray]
    ) -> None:
        self.args = (pool, owner, index, generation, arrays)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _received, self.args


def _received(
    pool: str, owner: str, index: int, generation: int, tensors: list[Any]
) -> tuple[str, int, int]:
    tracker = _TRACKERS.get(pool)
    if tracker is not None:
        from torch.multiprocessing.reductions import StorageWeakRef

        weak: Any = StorageWeakRef  # untyped in torch
        refs = [weak(t.untyped_storage()) for t in tensors]
        tracker.received((owner, index), generation, refs)
    return owner, index, generation


class SlotTracker:
    """The main process's side: its mappings of the workers' slots, and which slot
    generations it still holds."""

    def __init__(self) -> None:
        self.pool = os.urandom(8).hex()
        self._mapped: dict[tuple[SlotKey, str], np.ndarray] = {}
        self._held: dict[SlotKey, tuple[int, list[Any]]] = {}
        self._released: Released = {}
        _TRACKERS[self.pool] = self

    def map(self, slot: SlotKey, key: str, storage: Any) -> np.ndarray | None:
        """The bytes of ``slot``'s storage for ``key``: ``storage`` when the worker sent
        it (new or replaced), else the one it sent before."""
        if storage is not None:
            import torch

            self._mapped[slot, key] = _full_view(torch, storage)
        return self._mapped.get((slot, key))

    def received(self, key: SlotKey, generation: int, refs: list[Any]) -> None:
        self._held[key] = (generation, refs)
        self._released.pop(key, None)  # the worker refilled it: the older report is void

    def released(self) -> Released:
        """Each slot's generation that nothing here references any more."""
        for key, (generation, refs) in list(self._held.items()):
            if all(ref.expired() for ref in refs):
                del self._held[key]
                self._released[key] = generation
        return dict(self._released)

    def clear(self) -> None:
        """Forget the slots of workers that were stopped."""
        self._mapped.clear()
        self._held.clear()
        self._released.clear()


def shared_array(
    torch: Any,
    made: dict[str, Any],
    pool: SlotPool | None,
    index: int | None,
    key: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> np.ndarray | None:
    """An array over a tensor in shared memory (kept in ``made``), which a worker hands to
    the main process as it is (torch's DataLoader would copy a tensor that is not there
    yet): in slot ``index``'s storage for ``key`` when a slot is given, else in new shared
    memory. None for a dtype torch lacks."""
    try:
        kind = torch.from_numpy(np.empty(0, dtype)).dtype
    except TypeError:
        return None
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if pool is not None and index is not None:
        storage = pool.storage(torch, index, key, nbytes)
    else:
        storage = torch.UntypedStorage._new_shared(nbytes)
    tensor = torch.empty(0, dtype=kind).set_(storage, 0, shape)
    made[key] = tensor
    array: np.ndarray = tensor.numpy()  # torch is untyped here (imported lazily)
    return array
