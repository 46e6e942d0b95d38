"""``david-data browse``: a static report of a store's samples, runs and metrics.

``browse(store_url, "report/")`` plans the report (:mod:`.plan`), draws each sample's
pictures in parallel (:mod:`.run`, :mod:`.images`) and writes a site that opens from disk
(:mod:`.site`): a paged, sortable, filterable table of metadata and metrics, worst first,
with lazy thumbnails, and a detail view per sample.
"""

from __future__ import annotations

from .plan import BrowsePlan, BrowseSettings, plan_browse
from .run import BrowseReport, browse, draw_pictures, run_browse
from .site import write_site

__all__ = [
    "BrowsePlan",
    "BrowseReport",
    "BrowseSettings",
    "browse",
    "draw_pictures",
    "plan_browse",
    "run_browse",
    "write_site",
]
