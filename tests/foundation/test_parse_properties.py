"""The one parser of id lists (``0-3,7``: :func:`david_data._parse.parse_ranges`) through
both its callers, and :func:`~david_data._parse.parse_int`, for any input Hypothesis writes.

``facts.parse_parts``: the parts named, once each, in order. ``facts.parse_sample_ids``:
the ranges written, in order, however spaced. Anything else is one
:class:`~david_data.errors.ConfigError`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from david_data import facts
from david_data._parse import parse_int
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


id_ranges = st.lists(
    st.tuples(st.integers(0, facts.NUM_SAMPLES - 1), st.integers(0, 3000)).map(
        lambda t: (t[0], min(t[0] + t[1], facts.NUM_SAMPLES - 1))
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(ranges=id_ranges, data=st.data())
def test_sample_ids_reads_back_any_list_of_ranges_however_spaced(
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
    assert facts.parse_sample_ids(",".join(items)) == ranges


def _count_parts(names: list[str]) -> int:
    assert names == sorted(set(names))
    assert all(n in facts.all_part_names() or n == facts.SAMPLE_PART for n in names)
    return len(names)


def _count_ids(ranges: list[tuple[int, int]]) -> int:
    assert all(0 <= lo <= hi < facts.NUM_SAMPLES for lo, hi in ranges)
    return sum(hi - lo + 1 for lo, hi in ranges)


@dataclass(frozen=True)
class Caller:
    """One caller of the range parser: what it returns, counted (checking each id is
    valid), the ids it takes, and the words it reads besides ids and ranges."""

    parse: Callable[[str], list[Any]]
    count: Callable[[Any], int]
    stop: int
    letters: str


CALLERS = [
    pytest.param(Caller(facts.parse_parts, _count_parts, facts.NUM_PARTS, "alsmpe"), id="parts"),
    pytest.param(Caller(facts.parse_sample_ids, _count_ids, facts.NUM_SAMPLES, ""), id="ids"),
]


@pytest.mark.parametrize("caller", CALLERS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_backward_or_out_of_range_id_is_named(caller: Caller, data: st.DataObject) -> None:
    lo, hi = (data.draw(st.integers(0, 2 * caller.stop)) for _ in range(2))
    spec = f"{lo}-{hi}"
    if lo <= hi < caller.stop:
        assert caller.count(caller.parse(spec)) == hi - lo + 1
        return
    with pytest.raises(ConfigError, match="runs backwards" if lo > hi else "out of range"):
        caller.parse(spec)


@pytest.mark.parametrize("caller", CALLERS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_text_is_a_selection_or_one_config_error(caller: Caller, data: st.DataObject) -> None:
    alphabet = st.sampled_from("0123456789-, x" + caller.letters)
    spec = data.draw(st.text(alphabet=alphabet, max_size=30))
    try:
        chosen = caller.parse(spec)
    except ConfigError:
        return  # the only error a user may see
    assert caller.count(chosen) >= 1


@settings(max_examples=200, deadline=None)
@given(number=st.integers(-(10**12), 10**12), as_text=st.booleans(), pad=spaces)
def test_parse_int_reads_an_int_or_its_text_and_holds_the_minimum(
    number: int, as_text: bool, pad: str
) -> None:
    value: object = f"{pad}{number}{pad}" if as_text else number
    assert parse_int("--n", value) == number
    if number >= 1:
        assert parse_int("--n", value, minimum=1) == number
    else:
        with pytest.raises(ConfigError, match=r"--n must be a whole number of at least 1, got "):
            parse_int("--n", value, minimum=1)


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.booleans(),
        st.floats(allow_nan=True),
        st.none(),
        st.text(alphabet=st.sampled_from("0123456789+-. xe_"), max_size=8).filter(
            lambda t: re.fullmatch(r"\s*[+-]?\d+\s*", t) is None
        ),
    )
)
def test_parse_int_refuses_anything_but_a_whole_number_by_name(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^--n must be a whole number"):
        parse_int("--n", value)


def test_parse_int_takes_numpy_integers() -> None:
    assert parse_int("rank", np.int64(3), minimum=0) == 3
