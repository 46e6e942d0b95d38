"""``david-data fetch``: any subset of samples, member by member, without whole parts.

One engine: :func:`plan_fetch` (:mod:`.plan`: settings -> members still missing, grouped
into coalesced ranged requests and work units), then :func:`run_fetch` (:mod:`.run`: units
through an executor, every member verified and written atomically), folded into a
:class:`FetchReport` (:mod:`.report`); :mod:`.manifest` records what DEST holds. The catalog it plans
from is :mod:`david_data.catalog`.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "FetchSettings": ".plan",
    "FetchPlan": ".plan",
    "fetch_settings": ".plan",
    "plan_fetch": ".plan",
    "FetchReport": ".report",
    "fetch_unit": ".run",
    "run_fetch": ".run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
