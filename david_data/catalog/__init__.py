"""Any subset of SynthHuman without the whole dataset.

A part's zip central directory lists every member's offset, sizes and CRC-32, so a few
ranged reads per part give a catalog of every sample (:mod:`.catalog`, cached per part
version in :mod:`.cache`), and any sample can then be fetched alone and verified.
"""

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
