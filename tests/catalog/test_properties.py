"""Properties of range planning and of the id parser, for any input Hypothesis finds.

Coalescing: every member is fetched exactly once, in offset order, inside its range;
neighbours share a range only within ``max_gap``; a range outgrows ``max_bytes`` only
to hold one member; and no two neighbouring ranges could have been merged (the planner
is greedy, so the request count is the least it can be).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from david_data import facts
from david_data.catalog.member import MemberTask
from david_data.catalog.reader import coalesce
from david_data.catalog.select import parse_ids
from david_data.errors import ConfigError

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


id_ranges = st.lists(
    st.tuples(st.integers(0, facts.NUM_SAMPLES - 1), st.integers(0, 3000)).map(
        lambda t: (t[0], min(t[0] + t[1], facts.NUM_SAMPLES - 1))
    ),
    min_size=1,
    max_size=12,
)
spaces = st.sampled_from(["", " ", "  "])


@settings(max_examples=150, deadline=None)
@given(ranges=id_ranges, data=st.data())
def test_parse_ids_reads_back_any_list_of_ranges_however_spaced(
    ranges: list[tuple[int, int]], data: st.DataObject
) -> None:
    items = []
    for lo, hi in ranges:
        if lo == hi and data.draw(st.booleans()):
            item = str(lo)
        else:
            item = f"{lo}{data.draw(spaces)}-{data.draw(spaces)}{hi}"
        items.append(data.draw(spaces) + item + data.draw(spaces))
        if data.draw(st.booleans()):
            items.append(data.draw(spaces))  # an empty item (",,") is skipped
    assert parse_ids(",".join(items)) == ranges


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, facts.NUM_SAMPLES - 1), hi=st.integers(0, 2 * facts.NUM_SAMPLES))
def test_parse_ids_refuses_backward_and_out_of_range_ids_by_name(lo: int, hi: int) -> None:
    spec = f"{lo}-{hi}"
    if lo <= hi < facts.NUM_SAMPLES:
        assert parse_ids(spec) == [(lo, hi)]
        return
    with pytest.raises(ConfigError, match="runs backwards" if lo > hi else "out of range"):
        parse_ids(spec)


@settings(max_examples=300, deadline=None)
@given(spec=st.text(alphabet=st.sampled_from("0123456789-, x"), max_size=30))
def test_parse_ids_either_reads_a_spec_or_says_what_is_wrong(spec: str) -> None:
    try:
        ranges = parse_ids(spec)
    except ConfigError:
        return  # the only error a user may see
    assert ranges and all(0 <= lo <= hi < facts.NUM_SAMPLES for lo, hi in ranges)
