"""The zip format, read once for the whole project: mirror, verify, catalog, fetch and
convert all parse zips through this package.

- :mod:`.records`: end records, ZIP64 records and the central directory
  (:func:`read_layout`), every offset and size bounds-checked;
- :mod:`.local`: a member's local header and data descriptor, compared with its
  central-directory entry;
- :mod:`.members`: :class:`MemberReader`, the one streaming check of a member's record
  (header, CRC-32, inflate that must end exactly at the compressed size);
- :mod:`.ranges`: records grouped into few ranged reads.

Damage raises :class:`~david_data.errors.ZipFormatError` (records) or is reported by the
reader as problems naming the member; nothing reads outside a record or the file.
"""

from __future__ import annotations

from .local import header_differences
from .members import MemberReader
from .ranges import coalesce_spans
from .records import (
    DEFLATED,
    END_SEARCH_BYTES,
    STORED,
    MemberSpec,
    ZipEntry,
    ZipLayout,
    read_layout,
    record_end,
    record_ends,
)

__all__ = [
    "DEFLATED",
    "END_SEARCH_BYTES",
    "STORED",
    "MemberReader",
    "MemberSpec",
    "ZipEntry",
    "ZipLayout",
    "coalesce_spans",
    "header_differences",
    "read_layout",
    "record_end",
    "record_ends",
]
