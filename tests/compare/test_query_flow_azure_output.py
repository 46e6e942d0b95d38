"""query_flow's output on Azure Blob Storage is written with the flow's storage_options
(it checked and wrote the output without them, so a container reached only through
them failed)."""

from __future__ import annotations

import pytest


@pytest.mark.azurite
def test_the_query_flow_writes_its_output_with_the_storage_options(  # type: ignore[no-untyped-def]
    compare_store: str, azurite, az_container: str, prefect_harness: None
) -> None:
    import fsspec
    import pyarrow.parquet as pq
    from prefect.types import SecretDict

    from david_data.flows.query import query_flow
    from david_data.store import open_store

    options = azurite.storage_options
    sql = "SELECT sample_id, scenario FROM samples ORDER BY sample_id"
    out = f"{az_container}/q/result.parquet"
    state = query_flow(
        store=compare_store, sql=sql, output=out, storage_options=SecretDict(options),
        return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.result(raise_on_failure=False)
    fs = fsspec.filesystem("az", **options, skip_instance_cache=True)
    with fs.open(out.removeprefix("az://"), "rb") as f:
        assert pq.read_table(f).equals(open_store(compare_store).query(sql))
