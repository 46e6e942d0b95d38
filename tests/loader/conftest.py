"""A tiny store for the loader tests (36 samples, shards of 10, one failed sample), on
local disk and on Azurite behind a counting proxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest
from loader_helpers import BROKEN, IDS, SHARD, CountingProxy

from david_data.convert import convert
from david_data.synth import write_part


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mirror = tmp_path_factory.mktemp("loader-mirror")
    write_part(
        mirror / "SynthHuman_0000.zip", IDS, overrides={f"depth_{BROKEN:07d}.exr": b"garbage"}
    )
    path = tmp_path_factory.mktemp("loader-store") / "store.zarr"
    report = convert(str(mirror), str(path), shard_size=SHARD, workers=1)
    assert report.samples_ok == len(IDS) - 1 and len(report.sample_failures) == 1, report.summary()
    return path


@dataclass(frozen=True)
class AzStore:
    url: str
    storage_options: dict[str, str]
    blob_prefix: str  # request path prefix of the store's blobs (account/container/store)
    proxy: CountingProxy


@pytest.fixture(scope="session")
def az_store(store_path: Path, azurite) -> Iterator[AzStore]:
    """The same store uploaded to Azurite, reached through a counting proxy."""
    container = azurite.new_container()
    proxy = CountingProxy(azurite.port)
    connection = azurite.connection_string.replace(f":{azurite.port}/", f":{proxy.port}/")
    # Uploaded through the proxy too: it closes its connections to Azurite after each
    # request, and Azurite's shutdown waits for idle keep-alive connections.
    fs = fsspec.filesystem("az", connection_string=connection, skip_instance_cache=True)
    fs.put(str(store_path), f"{container[5:]}/store", recursive=True)
    try:
        yield AzStore(
            url=f"{container}/store",
            storage_options={"connection_string": connection},
            blob_prefix=f"/devstoreaccount1/{container[5:]}/store/",
            proxy=proxy,
        )
    finally:
        proxy.close()
