"""The per-sample metadata table's schema and its Parquet encoding (one file per shard).

One row per sample the source holds, converted or not (``status`` ``ok`` or ``error``).
The columns' meaning (statistics, bounding box, field of view) is documented where the
rows are computed, in :mod:`david_data.convert.metadata`.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

STATUS_OK = "ok"
STATUS_ERROR = "error"

SCHEMA = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("part", pa.string()),
        ("scenario", pa.string()),
        ("fx", pa.float64()),
        ("fy", pa.float64()),
        ("cx", pa.float64()),
        ("cy", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("foreground_fraction", pa.float64()),
        ("bbox_x_min", pa.int32()),
        ("bbox_y_min", pa.int32()),
        ("bbox_x_max", pa.int32()),
        ("bbox_y_max", pa.int32()),
        ("depth_min_cm", pa.float64()),
        ("depth_median_cm", pa.float64()),
        ("depth_max_cm", pa.float64()),
        ("fov_x_deg", pa.float64()),
        ("fov_y_deg", pa.float64()),
        ("part_sha256", pa.string()),
        ("shard", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
"""Columns of the ``samples`` table, in order."""


def rows_to_parquet(rows: list[dict[str, Any]]) -> bytes:
    """Serialise rows (sorted by sample id) as one Parquet file, deterministically."""
    ordered = sorted(rows, key=lambda r: r["sample_id"])
    table = pa.Table.from_pylist(ordered, schema=SCHEMA)
    buffer = io.BytesIO()
    write_checked_parquet(table, buffer)
    return buffer.getvalue()


def write_checked_parquet(table: pa.Table, sink: io.BytesIO) -> None:
    """Write ``table`` as Parquet whose every page carries its CRC-32, so that a reader
    (:func:`read_checked_parquet`) refuses a page changed on disk or in transit."""
    pq.write_table(table, sink, compression="zstd", write_page_checksum=True)


def read_checked_parquet(blob: bytes) -> pa.Table:
    """Read a metadata file, checking each page's CRC-32 (files written before have none)
    and that it holds every column of :data:`SCHEMA` (a flipped bit in a column's name
    would otherwise read as a column of nulls). The footer has no CRC: a flip in its row
    count still reads as fewer rows. Raises ``pa.ArrowException``, ``OSError``
    or ``ValueError`` on a damaged file."""
    # BufferReader reads the bytes in place (io.BytesIO made Arrow copy all of them again)
    file = pq.ParquetFile(pa.BufferReader(blob), page_checksum_verification=True)
    missing = [name for name in SCHEMA.names if name not in file.schema_arrow.names]
    if missing:
        raise ValueError(f"it lacks the column(s) {', '.join(missing)}")
    return file.read()
