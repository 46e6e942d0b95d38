"""Issue 10 metadata: opening a store reads one consolidated file, and a stale one (a
shard committed or rewritten after it) never gives a wrong answer."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from store_helpers import ALL_IDS, SHARD

from david_data.cli import main
from david_data.convert.run import convert
from david_data.errors import StoreError
from david_data.format import consolidate_metadata
from david_data.format.consolidated import read_metadata
from david_data.format.layout import CONSOLIDATED_NAME, open_layout
from david_data.format.metadata import rows_to_parquet
from david_data.store import open_store

EVERYTHING = "SELECT * FROM samples ORDER BY sample_id"


def shard_files(store: Path) -> list[Path]:
    return sorted((store / "metadata").glob("shard-*.parquet"))


def unconsolidated(store: Path) -> Path:
    (store / CONSOLIDATED_NAME).unlink(missing_ok=True)
    return store


def test_opening_a_consolidated_store_reads_one_file(store_copy: Path) -> None:
    want = read_metadata(open_layout(str(unconsolidated(store_copy))))
    assert consolidate_metadata(str(store_copy)) == len(ALL_IDS)
    # Scramble every shard file in place, keeping its size, inode and mtime: a reader that
    # still opened them would fail; one that trusts the consolidated file does not notice.
    for path in shard_files(store_copy):
        stat = path.stat()
        with open(path, "r+b") as handle:
            handle.write(b"\0" * stat.st_size)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    got = open_store(str(store_copy))
    assert got.metadata.equals(want)
    assert got.query("SELECT count(*) AS n FROM samples").column("n")[0].as_py() == len(ALL_IDS)


def test_consolidating_again_rewrites_nothing(store_copy: Path) -> None:
    consolidate_metadata(str(store_copy))
    target = store_copy / CONSOLIDATED_NAME
    before = target.stat().st_mtime_ns, target.stat().st_ino
    assert consolidate_metadata(str(store_copy)) == len(ALL_IDS)
    assert (target.stat().st_mtime_ns, target.stat().st_ino) == before


def test_a_stale_consolidated_file_still_answers_correctly(store: Path, store_copy: Path) -> None:
    want = open_store(str(store)).query(EVERYTHING)
    aside = store_copy / "aside"
    aside.mkdir()
    late = [p for p in shard_files(store_copy) if int(p.stem[len("shard-") :]) * SHARD >= 98000]
    for path in late:
        path.rename(aside / path.name)
    unconsolidated(store_copy)
    assert consolidate_metadata(str(store_copy)) == 6  # part 0 only
    for path in late:  # these shards are committed after the consolidation
        (aside / path.name).rename(path)
    assert open_store(str(store_copy)).query(EVERYTHING).equals(want)

    # A shard rewritten after it (e.g. a --retry-errors run): its new rows win.
    first = shard_files(store_copy)[0]
    rows = pq.read_table(first).to_pylist()
    rows[0].update(status="error", error="rewritten after the consolidation")
    first.write_bytes(rows_to_parquet(rows))
    got = open_store(str(store_copy)).query("SELECT error FROM samples WHERE sample_id = 0")
    assert got.column("error").to_pylist() == ["rewritten after the consolidation"]

    # A shard whose file is gone: its rows are gone too.
    first.unlink()
    ids = open_store(str(store_copy)).sample_ids.tolist()
    assert ids == [i for i in ALL_IDS if i >= SHARD]


def test_a_damaged_consolidated_file_falls_back_to_the_shard_files(
    store: Path, store_copy: Path
) -> None:
    (store_copy / CONSOLIDATED_NAME).write_bytes(b"")
    assert (
        open_store(str(store_copy))
        .query(EVERYTHING)
        .equals(open_store(str(store)).query(EVERYTHING))
    )


def test_a_store_converted_in_two_runs_answers_like_one_converted_at_once(
    mirror: Path, store: Path, tmp_path: Path
) -> None:
    url = str(tmp_path / "two-runs.zarr")
    for part in ("19", "0"):  # float32 EXRs first: part 0's float16 values fit exactly
        report = convert(str(mirror), url, parts=part, shard_size=SHARD, workers=1)
        assert report.ok, report.summary()
        if part == "19":
            consolidate_metadata(url)  # the second run's shards come after it
    columns = "* EXCLUDE (part_sha256)"  # the same parts, hashed either way
    sql = f"SELECT {columns} FROM samples ORDER BY sample_id"
    assert open_store(url).query(sql).equals(open_store(str(store)).query(sql))


def test_an_empty_metadata_file_is_an_error_naming_it(
    store_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unconsolidated(store_copy)
    broken = shard_files(store_copy)[1]
    broken.write_bytes(b"")
    with pytest.raises(StoreError, match=rf"{broken.name} is damaged \(0 bytes\)"):
        open_store(str(store_copy)).query("SELECT 1")
    assert main(["query", str(store_copy), "SELECT count(*) FROM samples"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: metadata file") and err.count("\n") == 1
    assert "rerun 'david-data convert'" in err


def _counts(store: Path) -> dict[str, int]:
    """Rows each third-party reader sees in the store's metadata, read the way the README
    shows."""
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds

    folder = store / "metadata"
    sql = f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')"
    return {
        "duckdb glob": duckdb.sql(sql).fetchall()[0][0],
        "polars glob": pl.scan_parquet(f"{folder}/*.parquet").select(pl.len()).collect().item(),
        "polars folder": pl.scan_parquet(folder).select(pl.len()).collect().item(),
        "pyarrow.dataset": ds.dataset(folder, format="parquet").count_rows(),
        "consolidated": pq.ParquetFile(store / CONSOLIDATED_NAME).metadata.num_rows,
    }


def test_duckdb_polars_and_pyarrow_see_each_row_once(store: Path) -> None:
    assert _counts(store) == dict.fromkeys(_counts(store), len(ALL_IDS))
    assert sorted(p.name for p in (store / "metadata").iterdir()) == [
        p.name for p in shard_files(store)
    ]


def test_a_store_with_its_consolidated_file_in_metadata_opens_and_is_tidied(
    store: Path, store_copy: Path, mirror: Path
) -> None:
    """Stores written before kept it as metadata/_consolidated.parquet, where every glob
    over the folder counted each row twice; the next conversion run moves it."""
    legacy = store_copy / "metadata" / "_consolidated.parquet"
    (store_copy / CONSOLIDATED_NAME).rename(legacy)
    assert open_store(str(store_copy)).query(EVERYTHING).equals(
        open_store(str(store)).query(EVERYTHING)
    )
    report = convert(str(mirror), str(store_copy), shard_size=SHARD, workers=1)
    assert report.ok and report.shards_written == 0
    assert not legacy.exists()
    assert _counts(store_copy) == dict.fromkeys(_counts(store), len(ALL_IDS))


def _flip_sweep(path: Path, read: object) -> list[int]:
    """Offsets of ``path`` where one flipped bit makes ``read()`` return other rows than
    the intact file gives (a StoreError is the right answer; so are the intact rows)."""
    intact = path.read_bytes()
    expected = read()  # type: ignore[operator]
    pages_end = len(intact) - pq.ParquetFile(path).metadata.serialized_size - 8
    silent = []
    for offset in range(0, pages_end, 7):  # every 7th byte of the pages (no CRC on the footer)
        damaged = bytearray(intact)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        try:
            got = read()  # type: ignore[operator]
        except StoreError:
            continue
        if not got.equals(expected):
            silent.append(offset)
    path.write_bytes(intact)
    return silent


def test_a_flipped_bit_in_a_metadata_file_never_gives_other_rows(store_copy: Path) -> None:
    """The store's rows are checked like its chunks: every Parquet page carries its CRC-32
    and the columns are those of the format, so a bit flipped in a page is an error (a
    damaged consolidated file is ignored for the shard files), never a wrong row. Before:
    ~1 in 6 flips read as other sample ids, scenarios or intrinsics. (The footer has no
    CRC: a flip in its row count still reads as fewer rows.)"""
    consolidate_metadata(str(store_copy))  # a copy's file fingerprints differ: write it anew
    layout = open_layout(str(store_copy))
    assert _flip_sweep(store_copy / CONSOLIDATED_NAME, lambda: read_metadata(layout)) == []
    unconsolidated(store_copy)
    assert _flip_sweep(shard_files(store_copy)[0], lambda: read_metadata(layout)) == []


def test_reading_a_metadata_file_does_not_copy_it() -> None:
    """Opening the full store reads its ~20 MB consolidated file once, into one ``bytes``;
    Arrow decodes it in place. Before, Arrow read it through ``io.BytesIO`` and copied every
    column chunk into new Python bytes first (~20 MB more memory touched at 298k samples)."""
    import numpy as np
    import pyarrow as pa

    from david_data.format.metadata import SCHEMA, read_checked_parquet, write_checked_parquet

    n = 20_000
    rng = np.random.default_rng(0)
    columns = {
        f.name: pa.array(rng.integers(0, 10**9, n)).cast(f.type)
        if not pa.types.is_string(f.type)
        else pa.array([f"{v:064x}" for v in rng.integers(0, 2**62, n)])
        for f in SCHEMA
    }
    want = pa.Table.from_pydict(columns, schema=SCHEMA)
    sink = io.BytesIO()
    write_checked_parquet(want, sink)
    blob = sink.getvalue()
    tracemalloc.start()
    try:
        got = read_checked_parquet(blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.equals(want)
    assert peak < len(blob) // 10, f"{peak:,} bytes of Python memory to read {len(blob):,}"
