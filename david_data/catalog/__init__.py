"""Any subset of SynthHuman without the whole dataset.

A part's zip central directory lists every member's offset, sizes and CRC-32, so a few
ranged reads per part give a catalog of every sample (:mod:`.catalog`, cached per part
version in :mod:`.cache`), and any sample can then be read alone and verified
(:mod:`.reader`); ``david-data fetch`` is :mod:`david_data.fetch`, and converting straight
from a host reads through :mod:`david_data.sources.http`.

The names below are imported on first use: a worker that only reads members
(:mod:`.reader`, :mod:`david_data.sources.http`) never loads DuckDB, which :mod:`.catalog` needs
only to run SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
    from .catalog import (
        Catalog,
        CatalogSource,
        load_catalog,
        load_part,
        open_catalog_source,
        overview,
    )
    from .directory import PartCatalog
    from .remote import PartVersion
else:
    from .. import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = [
    "Catalog",
    "CatalogSource",
    "PartCatalog",
    "PartVersion",
    "load_catalog",
    "load_part",
    "open_catalog_source",
    "overview",
]
