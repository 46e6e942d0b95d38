"""Properties of range planning, for any input Hypothesis finds.

Coalescing: every member is fetched exactly once, in offset order, inside its range;
neighbours share a range only within ``max_gap``; a range outgrows ``max_bytes`` only
to hold one member; and no two neighbouring ranges could have been merged (the planner
is greedy, so the request count is the least it can be).
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from david_data.catalog.member import MemberTask
from david_data.catalog.reader import coalesce

COALESCE = coalesce
"""The planner under test (one function: re-point here if it moves)."""


@st.composite
def members(draw: st.DrawFn) -> list[MemberTask]:
    """Zip members in a shuffled order, laid out one after the other with gaps (the
    local headers and members the caller did not ask for)."""
    layout = draw(
        st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 5000)), min_size=0, max_size=40)
    )
    tasks, at = [], 0
    for i, (gap, size) in enumerate(layout):
        at += gap
        tasks.append(
            MemberTask(sample_id=i, name=f"rgb_{i:07d}.png", offset=at, end_offset=at + size,
                       compressed_size=size, size=size, crc32=0, method=0)
        )  # fmt: skip
        at += size
    return draw(st.permutations(tasks))


@settings(max_examples=300, deadline=None)
@given(tasks=members(), max_gap=st.integers(0, 6000), max_bytes=st.integers(1, 30000))
def test_coalescing_fetches_each_member_once_in_as_few_ranges_as_the_limits_allow(
    tasks: list[MemberTask], max_gap: int, max_bytes: int
) -> None:
    ranges = COALESCE(tasks, max_gap, max_bytes)
    ordered = sorted(tasks, key=lambda t: t.offset)
    assert [m for r in ranges for m in r.members] == ordered  # once each, in offset order
    for r in ranges:
        assert r.members, "an empty request"
        assert r.start == r.members[0].offset
        assert r.end == max(m.end_offset for m in r.members) - 1  # inclusive, all inside
        assert all(b.offset - a.end_offset <= max_gap for a, b in itertools.pairwise(r.members))
        assert r.end + 1 - r.start <= max_bytes or len(r.members) == 1
    for a, b in itertools.pairwise(ranges):
        assert a.end < b.start  # no byte asked twice
        first = b.members[0]
        merged_too_far = first.offset - (a.end + 1) > max_gap
        merged_too_big = first.end_offset - a.start > max_bytes
        assert merged_too_far or merged_too_big, "two ranges that one request could serve"
