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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "Catalog": ".catalog",
    "CatalogSource": ".catalog",
    "load_catalog": ".catalog",
    "load_part": ".catalog",
    "open_catalog_source": ".catalog",
    "overview": ".catalog",
    "PartCatalog": ".directory",
    "PartVersion": ".remote",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
