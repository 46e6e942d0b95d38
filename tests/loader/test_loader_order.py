"""The epoch order and its split over ranks (pure numpy: no torch, no store)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from david_data.errors import ConfigError
from david_data.loader.order import (
    Segment,
    epoch_order,
    rank_batches,
    remaining_after,
    replay,
    steps_per_rank,
)

SHARD = 10
IDS = np.array([i for i in range(0, 200) if i % 7 != 3] + list(range(5000, 5013)), dtype=np.int64)


def run(remaining, order, world_size, batch_size, drop_last, steps=None):
    """Each rank's batches for ``steps`` steps (all when None): list per rank of (ids, padding)."""
    out = []
    for rank in range(world_size):
        batches = list(
            rank_batches(
                remaining,
                order,
                world_size=world_size,
                rank=rank,
                batch_size=batch_size,
                drop_last=drop_last,
            )
        )
        out.append(batches if steps is None else batches[:steps])
    return out


def real_ids(per_rank) -> list[int]:
    return [int(i) for batches in per_rank for b in batches for i in b.sample_ids[~b.padding]]


def test_order_is_a_seeded_permutation_that_changes_with_the_epoch():
    a = epoch_order(IDS, SHARD, seed=3, epoch=0, shuffle=True)
    assert sorted(a.tolist()) == sorted(IDS.tolist())
    assert np.array_equal(a, epoch_order(IDS, SHARD, seed=3, epoch=0, shuffle=True))
    assert not np.array_equal(a, epoch_order(IDS, SHARD, seed=3, epoch=1, shuffle=True))
    assert not np.array_equal(a, epoch_order(IDS, SHARD, seed=4, epoch=0, shuffle=True))
    assert np.array_equal(epoch_order(IDS[::-1], SHARD, seed=0, epoch=5, shuffle=False), IDS)


def test_order_goes_window_by_window_of_shards():
    window = 3
    order = epoch_order(IDS, SHARD, seed=1, epoch=2, shuffle=True, window=window)
    shards = order // SHARD
    # Cut the order where the set of shards seen so far reaches `window`: each shard's
    # samples all fall inside one block of at most `window` shards.
    blocks, current, seen = [], [], set()
    for shard in shards.tolist():
        if shard not in seen and len(seen) == window:
            blocks.append(current)
            current, seen = [], set()
        seen.add(shard)
        current.append(shard)
    blocks.append(current)
    owners = {}
    for i, block in enumerate(blocks):
        assert len(set(block)) <= window
        for shard in set(block):
            assert owners.setdefault(shard, i) == i, f"shard {shard} spread over blocks"
    # ... and samples are mixed within a window (not shard after shard).
    assert any(len(set(block[:SHARD])) > 1 for block in blocks)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 90),
    world_size=st.integers(1, 5),
    batch_size=st.integers(1, 7),
)
def test_one_epoch_covers_every_sample_exactly_once_over_the_ranks(n, world_size, batch_size):
    order = epoch_order(np.arange(n), SHARD, seed=0, epoch=0, shuffle=True)
    per_rank = run(order, order, world_size, batch_size, drop_last=False)
    assert sorted(real_ids(per_rank)) == list(range(n))
    steps = steps_per_rank(n, world_size, batch_size, drop_last=False)
    for batches in per_rank:
        assert len(batches) == steps  # lockstep
        for k, b in enumerate(batches):
            assert b.sample_ids.shape == b.padding.shape == (batch_size,)
            if k < steps - 1:
                assert not b.padding.any()  # padding only in the final step
            assert set(b.sample_ids[b.padding].tolist()) <= set(order.tolist())


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 90), world_size=st.integers(1, 5), batch_size=st.integers(1, 7))
def test_drop_last_yields_full_batches_at_most_once(n, world_size, batch_size):
    order = epoch_order(np.arange(n), SHARD, seed=0, epoch=0, shuffle=True)
    per_rank = run(order, order, world_size, batch_size, drop_last=True)
    ids = real_ids(per_rank)
    assert len(ids) == len(set(ids))
    assert all(not b.padding.any() for batches in per_rank for b in batches)
    assert len(ids) == world_size * batch_size * steps_per_rank(n, world_size, batch_size, True)
    assert n - len(ids) < world_size * (batch_size + 1)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 90),
    world_size=st.integers(1, 4),
    batch_size=st.integers(1, 6),
    cut=st.floats(0, 1),
    drop_last=st.booleans(),
)
def test_resuming_on_the_same_world_size_gives_the_same_batches(
    n, world_size, batch_size, cut, drop_last
):
    order = epoch_order(np.arange(n), SHARD, seed=7, epoch=1, shuffle=True)
    whole = run(order, order, world_size, batch_size, drop_last)
    k = int(cut * len(whole[0]))
    rest = run(
        replay(order, [Segment(world_size, batch_size, drop_last, k)]),
        order,
        world_size,
        batch_size,
        drop_last,
    )
    for rank in range(world_size):
        assert len(rest[rank]) == len(whole[rank]) - k
        for a, b in zip(whole[rank][k:], rest[rank], strict=True):
            assert np.array_equal(a.sample_ids, b.sample_ids)
            assert np.array_equal(a.padding, b.padding)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 120),
    sizes=st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 6), st.floats(0, 1)), min_size=1, max_size=3
    ),
    final=st.tuples(st.integers(1, 5), st.integers(1, 6)),
)
def test_elastic_resume_covers_the_rest_exactly_once(n, sizes, final):
    """Segments at changing world sizes and batch sizes, then a last one to the end."""
    order = epoch_order(np.arange(n), SHARD, seed=2, epoch=0, shuffle=True)
    segments, seen = [], []
    for world_size, batch_size, cut in sizes:
        remaining = replay(order, segments)
        steps = int(cut * steps_per_rank(remaining.size, world_size, batch_size, False))
        seen += real_ids(run(remaining, order, world_size, batch_size, False, steps))
        segments.append(Segment(world_size, batch_size, False, steps))
    world_size, batch_size = final
    seen += real_ids(run(replay(order, segments), order, world_size, batch_size, False))
    assert sorted(seen) == list(range(n))


def test_two_to_three_ranks_by_hand():
    order = np.arange(20)
    # Two ranks, batch 3: spans 0..9 and 10..19; two steps consume 0..5 and 10..15.
    rest = remaining_after(order, Segment(2, 3, False, 2))
    assert rest.tolist() == [6, 7, 8, 9, 16, 17, 18, 19]
    per_rank = run(rest, order, 3, 3, False)
    assert [[b.sample_ids.tolist() for b in r] for r in per_rank] == [
        [[6, 7, 8]],
        [[9, 16, 17]],
        [[18, 19, 18]],
    ]
    assert per_rank[2][0].padding.tolist() == [False, False, True]


def test_a_state_that_does_not_fit_is_rejected():
    with pytest.raises(ConfigError, match="inconsistent"):
        remaining_after(np.arange(10), Segment(2, 3, False, 3))
