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
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
