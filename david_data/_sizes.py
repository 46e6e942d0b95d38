"""Byte counts as people read them, in every report, plan and progress line."""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    """``1234567`` -> ``"1.2 MB"``: decimal units (1 KB = 1000 B) from B to TB, whole bytes
    below 1 KB, one decimal above; ``"?"`` for an unknown size (None)."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable: the loop returns at TB")
