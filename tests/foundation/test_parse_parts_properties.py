"""``facts.parse_parts`` for any selection Hypothesis writes: the parts named, once each,
in order; anything else is one :class:`~david_data.errors.ConfigError`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from david_data import facts
from david_data.errors import ConfigError

spaces = st.sampled_from(["", " ", "  "])
indices = st.integers(0, facts.NUM_PARTS - 1)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(indices, indices), min_size=1, max_size=10), data=st.data())
def test_any_list_of_parts_and_ranges_names_each_part_once_in_order(
    items: list[tuple[int, int]], data: st.DataObject
) -> None:
    chosen: set[int] = set()
    written = []
    for a, b in items:
        lo, hi = min(a, b), max(a, b)
        chosen.update(range(lo, hi + 1))
        text = str(lo) if lo == hi and data.draw(st.booleans()) else f"{lo}-{hi}"
        written.append(data.draw(spaces) + text + data.draw(spaces))
    spec = ",".join(written)
    spec = spec.upper() if data.draw(st.booleans()) else spec
    assert facts.parse_parts(spec) == [facts.part_name(i) for i in sorted(chosen)]


@settings(max_examples=100, deadline=None)
@given(lo=st.integers(0, 200), hi=st.integers(0, 200))
def test_a_backward_or_missing_part_is_named(lo: int, hi: int) -> None:
    spec = f"{lo}-{hi}"
    if lo <= hi < facts.NUM_PARTS:
        assert len(facts.parse_parts(spec)) == hi - lo + 1
        return
    with pytest.raises(ConfigError, match="runs backwards" if lo > hi else "out of range"):
        facts.parse_parts(spec)


@settings(max_examples=300, deadline=None)
@given(spec=st.text(alphabet=st.sampled_from("0123456789-, xalsmpe"), max_size=20))
def test_any_text_is_a_selection_or_one_config_error(spec: str) -> None:
    try:
        names = facts.parse_parts(spec)
    except ConfigError:
        return
    assert names and names == sorted(set(names))
    assert all(n in facts.all_part_names() or n == facts.SAMPLE_PART for n in names)
