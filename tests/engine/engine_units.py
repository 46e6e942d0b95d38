"""Module-level work units for the engine tests (picklable for processes and Dask)."""

from __future__ import annotations

import os
import time


def square(n: int) -> int:
    return n * n


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("three is bad")
    return n


def slow(n: float) -> float:
    time.sleep(n)
    return n


def slow_then_mark(args: tuple[float, str]) -> float:
    """Sleep, then create the file ``args[1]``: it exists once the unit has finished."""
    seconds, marker = args
    time.sleep(seconds)
    with open(marker, "x"):
        pass
    return seconds


def pid(_: int) -> int:
    time.sleep(0.05)
    return os.getpid()
