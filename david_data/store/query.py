"""The ``samples`` metadata table: loaded from the per-shard Parquet files, queried with DuckDB.

The committed shards' Parquet files are fetched through fsspec (concurrently on object
stores) into one Arrow table, which DuckDB queries in place as the view ``samples``.
"""

from __future__ import annotations

import io
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..format.layout import METADATA_DIR, StoreLayout
from ..format.metadata import SCHEMA
from ..errors import ConfigError
from ..fsutil import is_local, join

TABLE = "samples"


def load_metadata(layout: StoreLayout) -> pa.Table:
    """All committed metadata rows, sorted by sample id."""
    folder = join(layout.root, METADATA_DIR)
    try:
        paths = sorted(p for p in layout.fs.ls(folder, detail=False) if p.endswith(".parquet"))
    except FileNotFoundError:
        paths = []
    if not paths:
        return SCHEMA.empty_table()
    if is_local(layout.fs):
        # Arrow reads the files on its own threads, ~10x faster than one by one.
        return ds.dataset(paths, schema=SCHEMA, format="parquet").to_table().sort_by("sample_id")
    blobs = layout.fs.cat(paths)
    if isinstance(blobs, bytes):  # a single path comes back as bytes
        blobs = {paths[0]: blobs}
    tables = [pq.read_table(io.BytesIO(blobs[p]), schema=SCHEMA) for p in paths]
    return pa.concat_tables(tables).sort_by("sample_id")


def run_query(table: pa.Table, sql: str) -> pa.Table:
    """Run ``sql`` against ``table`` exposed as ``samples``."""
    connection = duckdb.connect()
    try:
        connection.register(TABLE, table)
        try:
            relation = connection.sql(sql)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise ConfigError(
                f"query failed: {exc}\nThe table is '{TABLE}' with columns: {', '.join(table.column_names)}"
            ) from exc
    finally:
        connection.close()


def ids_from(table: pa.Table, sql: str) -> Any:
    """The ``sample_id`` column of a query result, as int64 numpy array."""
    result = run_query(table, sql)
    if "sample_id" not in result.column_names:
        raise ConfigError(
            f"the query must return a sample_id column (got {', '.join(result.column_names)}); "
            "e.g. SELECT sample_id FROM samples WHERE scenario = 'face'"
        )
    return result.column("sample_id").to_numpy(zero_copy_only=False).astype("int64")


def format_table(table: pa.Table) -> str:
    """A query result as a plain-text table for a terminal, with its row count."""
    import io

    from rich.console import Console
    from rich.table import Table

    out = Table(show_header=True, header_style="bold")
    for name in table.column_names:
        out.add_column(name)
    for row in table.to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console = Console(width=max(80, 14 * len(table.column_names)), record=True, file=io.StringIO())
    console.print(out)
    return console.export_text() + f"({table.num_rows} rows)\n"
