"""Group member records into few ranged reads: neighbours share one read.

Records sorted by offset are merged while the gap between one and the next is at most
``max_gap`` bytes (downloading the gap costs less than another request) and the read
stays within ``max_bytes``; a read grows past ``max_bytes`` only to hold a single larger
record. Used by the catalog's fetch and by convert reading zips in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def coalesce_spans(
    items: Iterable[T], span: Callable[[T], tuple[int, int]], *, max_gap: int, max_bytes: int
) -> list[tuple[int, int, list[T]]]:
    """``(start, end, items)`` reads, ``end`` exclusive, in offset order; ``span(item)``
    gives an item's bytes ``[start, end)``."""
    reads: list[tuple[int, int, list[T]]] = []
    group: list[T] = []
    start = end = 0
    for item in sorted(items, key=lambda i: span(i)[0]):
        first, last = span(item)
        if group and (first - end > max_gap or last - start > max_bytes):
            reads.append((start, end, group))
            group = []
        if not group:
            start, end = first, last
        group.append(item)
        end = max(end, last)
    if group:
        reads.append((start, end, group))
    return reads
