"""The order of an epoch and its split over ranks: pure functions of plain numbers.

An epoch's **order** depends only on the selected ids, the shard size, ``seed``,
``epoch`` and ``shuffle``: shards are visited in a seeded random order and the samples
of each window of :data:`SHUFFLE_WINDOW` consecutive (shuffled) shards are shuffled
together, so reads go shard by shard while batches still mix several shards.

The order is consumed in **segments**. A segment is a stretch run at one
``(world_size, batch_size, drop_last)``: the samples not yet consumed are cut into
``world_size`` contiguous spans (sizes differing by at most one, as ``numpy.array_split``),
rank ``r`` reads span ``r`` in batches of ``batch_size``, and all ranks take the same
number of steps (lockstep). A rank whose span runs out first pads its final batch by
repeating that batch's own samples (or, when it has none left, the first samples of the
epoch order); padding occurs only in the final step. The position in an epoch is the
list of segments run so far, ``[(world_size, batch_size, drop_last, steps), ...]``: the
same on every rank, and enough to recompute the samples still to come, whatever the
world size of the next segment (elastic resume). With the same world size and batch
size the spans of the next segment line up with the rest of the old ones, so a resumed
rank yields exactly what it would have yielded without the interruption.

Contiguous spans keep each rank on its own shards: a rank downloads the shards of its
span, not a slice of every shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

SHUFFLE_WINDOW = 8
"""Shards whose samples are shuffled together (800 samples at the default shard size;
about 1 GB of fast-profile shards, which the shard cache must hold)."""


@dataclass(frozen=True)
class Segment:
    """A stretch of an epoch run at one world size and batch size."""

    world_size: int
    batch_size: int
    drop_last: bool
    steps: int


@dataclass(frozen=True)
class Batch:
    """One rank's batch: sample ids (padding entries repeat real ones) and the padding mask."""

    sample_ids: np.ndarray
    padding: np.ndarray


def epoch_order(
    sample_ids: np.ndarray,
    shard_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool,
    window: int = SHUFFLE_WINDOW,
) -> np.ndarray:
    """Every selected id once, in the epoch's order (ids ascending when not shuffling)."""
    ids = np.sort(np.asarray(sample_ids, dtype=np.int64))
    ids = ids[np.concatenate(([True], ids[1:] != ids[:-1]))] if ids.size else ids
    if not shuffle or ids.size == 0:
        return ids
    rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
    groups = np.split(ids, np.flatnonzero(np.diff(ids // shard_size)) + 1)
    visit = rng.permutation(len(groups))
    pieces = []
    for first in range(0, len(visit), window):
        members = np.concatenate([groups[g] for g in visit[first : first + window]])
        pieces.append(members[rng.permutation(members.size)])
    return np.concatenate(pieces)


def steps_per_rank(n: int, world_size: int, batch_size: int, drop_last: bool) -> int:
    """Batches each rank yields when ``n`` samples are left."""
    if drop_last:
        return (n // world_size) // batch_size
    longest = -(-n // world_size)
    return -(-longest // batch_size)


def _spans(
    remaining: np.ndarray, world_size: int, drop_last: bool
) -> tuple[list[np.ndarray], np.ndarray]:
    """The ranks' contiguous spans, and the tail that ``drop_last`` leaves out."""
    n = remaining.size
    if drop_last:
        per = n // world_size
        spans = [remaining[r * per : (r + 1) * per] for r in range(world_size)]
        return spans, remaining[world_size * per :]
    return list(np.array_split(remaining, world_size)), remaining[n:]


def remaining_after(remaining: np.ndarray, segment: Segment) -> np.ndarray:
    """The samples still to come after ``segment`` ran over ``remaining``."""
    n = remaining.size
    if segment.world_size < 1 or segment.batch_size < 1:
        raise ConfigError(
            f"loader state is inconsistent: a segment at world size {segment.world_size} and "
            f"batch size {segment.batch_size}; restore a state saved by this store's loader"
        )
    possible = steps_per_rank(n, segment.world_size, segment.batch_size, segment.drop_last)
    if not 0 <= segment.steps <= possible:
        raise ConfigError(
            f"loader state is inconsistent: a segment of {segment.steps} steps at world size "
            f"{segment.world_size} and batch size {segment.batch_size} over {n} samples "
            f"(at most {possible}); restore a state saved by this store's loader"
        )
    if segment.steps == 0:
        return remaining
    if segment.steps == possible:
        return remaining[:0]
    spans, tail = _spans(remaining, segment.world_size, segment.drop_last)
    done = segment.steps * segment.batch_size
    return np.concatenate([span[done:] for span in spans] + [tail])


def replay(order: np.ndarray, segments: Sequence[Segment]) -> np.ndarray:
    """The samples of ``order`` still to come after ``segments``."""
    remaining = order
    for segment in segments:
        remaining = remaining_after(remaining, segment)
    return remaining


def rank_batches(
    remaining: np.ndarray,
    order: np.ndarray,
    *,
    world_size: int,
    rank: int,
    batch_size: int,
    drop_last: bool,
) -> Iterator[Batch]:
    """Rank ``rank``'s batches over ``remaining`` (padding drawn as the module docstring says)."""
    steps = steps_per_rank(remaining.size, world_size, batch_size, drop_last)
    span = _spans(remaining, world_size, drop_last)[0][rank]
    for step in range(steps):
        real = span[step * batch_size : (step + 1) * batch_size]
        padding = np.zeros(batch_size, dtype=bool)
        if real.size < batch_size:
            source = real if real.size else order[:batch_size]
            fill = source[np.arange(batch_size - real.size) % source.size]
            real = np.concatenate([real, fill])
            padding[batch_size - fill.size :] = True
        yield Batch(sample_ids=real, padding=padding)


def selection_digest(sample_ids: np.ndarray) -> str:
    """A short fingerprint of the selected ids, stored in the state to catch a mismatch."""
    data = np.ascontiguousarray(np.asarray(sample_ids, dtype="<i8")).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]
