"""Values as users type them (command lines, deployment parameters, ``--param``), read
into Python values or refused with a :class:`~david_data.errors.ConfigError` that names
the option and what was given.

- :func:`parse_int`: a whole number, given as an int or as its text.
- :func:`parse_ranges`: a list of ids and inclusive ranges such as ``0-3,7``.
"""

from __future__ import annotations

import numbers
import re
from typing import Final

from .errors import ConfigError

_INT: Final = re.compile(r"[+-]?\d+")
_RANGE: Final = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")


def parse_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` (an int, a numpy integer or its text, spaces around it allowed) as an
    int of at least ``minimum`` (None: any); ConfigError naming ``name`` otherwise.

    Booleans and floats are refused: ``True`` or ``2.5`` for a count is a mistake.
    """
    number: int | None = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    if minimum is not None and (number is None or number < minimum):
        raise ConfigError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    if number is None:
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return number


def parse_ranges(
    spec: str, *, stop: int, what: str, unit: str, usage: str
) -> list[tuple[int, int]]:
    """``"0-3, 7"`` -> ``[(0, 3), (7, 7)]``: inclusive ranges of ids below ``stop``, in
    the order written (empty items are skipped; a range may have spaces around its ``-``).

    The messages name the selection (``what``: ``"part selection"``), one id (``unit``:
    ``"part"``) and how to write one (``usage``): a text that is not ids and ranges, a
    range that runs backwards, an id of ``stop`` or more, or nothing at all is each one
    ConfigError.
    """
    ranges: list[tuple[int, int]] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        match = _RANGE.fullmatch(item)
        if match is None:
            raise ConfigError(f"cannot read {what} {spec!r}: use {usage}")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if lo > hi:
            raise ConfigError(f"{unit} range {item!r} runs backwards; write it as '{hi}-{lo}'")
        if hi >= stop:
            raise ConfigError(
                f"{unit} {hi} is out of range: SynthHuman has {unit}s 0 to {stop - 1}"
            )
        ranges.append((lo, hi))
    if not ranges:
        raise ConfigError(f"{what} {spec!r} selects nothing; use {usage}")
    return ranges
