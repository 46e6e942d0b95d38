"""``david-data query`` as a Prefect flow: one SQL over a store's ``samples`` and
``metrics`` tables (the same read-only sandbox), its result published as a table artifact
and, with ``output``, written as Parquet."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.types import SecretDict

from david_data.store import open_store
from david_data.store.output import check_output_file, write_output

ARTIFACT_ROWS = 1000
"""Rows shown in the artifact; ``output`` holds them all."""


@flow(name="query", log_prints=True)
def query_flow(
    store: str,
    sql: str,
    output: str | None = None,
    storage_options: SecretDict | None = None,
) -> list[dict[str, Any]]:
    """Run ``sql`` over ``store`` (tables ``samples`` and ``metrics``); publish the first
    rows as the ``query`` artifact, write all of them to ``output`` (Parquet) when given,
    and return the first rows as records."""
    import io

    import pyarrow.parquet as pq

    from david_data.store.query import format_table, plain_records

    options = storage_options.get_secret_value() if storage_options else None
    if output:
        check_output_file(output, options, example="result.parquet")
    table = open_store(store, options).query(sql)
    print(format_table(table.slice(0, 50)))
    if output:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        print(f"wrote {table.num_rows} rows to {write_output(output, buffer.getvalue(), options)}")
    rows = plain_records(table, ARTIFACT_ROWS)
    create_table_artifact(key="query", table=rows, description=f"{table.num_rows} rows of: {sql}")
    return rows
