"""A store served over loopback HTTP (issue 15, item 5): a web server cannot list a folder,
so the store reads through its consolidated metadata, or is one ``error:`` line; never
0 samples with exit 0."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from david_data import open_store
from david_data.cli import main
from david_data.errors import StoreError
from david_data.synth.host import LocalHost


@pytest.fixture()
def served(store_copy: Path) -> Iterator[tuple[LocalHost, str]]:
    with LocalHost(store_copy.parent) as host:
        yield host, host.url(store_copy.name)


def test_an_http_store_reads_through_its_consolidated_metadata(
    store: Path, served: tuple[LocalHost, str], capsys: pytest.CaptureFixture[str]
) -> None:
    host, url = served
    local = open_store(str(store))
    remote = open_store(url)
    assert len(local) > 0 and len(remote) == len(local)
    assert np.array_equal(remote.sample_ids, local.sample_ids)
    assert remote.metadata.equals(local.metadata)
    sid = int(local.sample_ids[-1])
    assert np.array_equal(remote.sample(sid)["depth"], local.sample(sid)["depth"])
    assert main(["query", url, "SELECT count(*) AS n FROM samples", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert str(len(local)) in out and json.loads(out)  # the count, as JSON
    assert not [r for r in host.stats.requests if r.path.endswith("metadata/")]  # never listed


def test_an_http_store_without_consolidated_metadata_is_one_error_line(
    store_copy: Path, served: tuple[LocalHost, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = served
    (store_copy / "metadata.parquet").unlink()
    with pytest.raises(StoreError, match="metadata.parquet"):
        len(open_store(url))
    assert main(["query", url, "SELECT count(*) FROM samples"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "metadata.parquet" in captured.err and "david-data convert" in captured.err


def test_python_http_server_listings_are_not_read_as_shard_files(
    store: Path, store_copy: Path
) -> None:
    """``python -m http.server`` answers a folder with an HTML page of links (no sizes)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(store_copy.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{store_copy.name}"
        assert len(open_store(url)) == len(open_store(str(store)))
    finally:
        server.shutdown()
        server.server_close()
