"""The store format, shared by its writer (:mod:`david_data.convert`) and its reader
(:mod:`david_data.store`), neither of which imports the other: on-disk layout
(:mod:`.layout`), shard objects and their index (:mod:`.shard`, read by :mod:`.reader`),
chunk codecs and their zarr entry points (:mod:`.codecs`, :mod:`.zarr_codecs`,
:mod:`.imagecodec`), the CRC-32C that ends every chunk and shard index (:mod:`.checksum`),
and the metadata table: its schema (:mod:`.metadata`) and its
consolidated file (:mod:`.consolidated`).

Importing this package is cheap; :func:`consolidate_metadata` loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
    from .consolidated import consolidate_metadata
else:
    from .. import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = ["consolidate_metadata"]
