"""``david-data fetch``: any subset of samples, member by member, without whole parts.

One engine: :func:`plan_fetch` (:mod:`.plan`: settings -> members still missing, grouped
into coalesced ranged requests and work units), then :func:`run_fetch` (:mod:`.run`: units
through an executor, every member verified and written atomically), folded into a
:class:`FetchReport` (:mod:`.report`); :mod:`.manifest` records what DEST holds. The catalog it plans
from is :mod:`david_data.catalog`.
"""

from .plan import FetchPlan, FetchSettings, fetch_settings, plan_fetch
from .report import FetchReport
from .run import fetch_unit, run_fetch

__all__ = [
    "FetchPlan",
    "FetchReport",
    "FetchSettings",
    "fetch_settings",
    "fetch_unit",
    "plan_fetch",
    "run_fetch",
]
