"""Small pure pieces of the fetch: coalescing, id lists, member checks."""

from __future__ import annotations

import struct
import zlib

import pytest

from david_data import facts
from david_data.catalog.member import MemberStream, MemberTask
from david_data.catalog.reader import coalesce
from david_data.catalog.select import parts_for_ids
from david_data.errors import ConfigError, VerificationError


def task(offset: int, end: int, name: str = "rgb_0000001.png") -> MemberTask:
    return MemberTask(
        sample_id=1, name=name, offset=offset, end_offset=end, compressed_size=0, size=0,
        crc32=0, method=0,
    )  # fmt: skip


def test_neighbours_share_a_request_when_the_gap_is_small() -> None:
    tasks = [task(0, 100), task(100, 200), task(250, 300), task(10_000, 10_100)]
    ranges = coalesce(tasks, max_gap=64, max_bytes=1 << 20)
    assert [(r.start, r.end, len(r.members)) for r in ranges] == [(0, 299, 3), (10_000, 10_099, 1)]
    # A size cap splits between members, never inside one.
    capped = coalesce(tasks[:3], max_gap=64, max_bytes=150)
    assert [(r.start, r.end) for r in capped] == [(0, 99), (100, 199), (250, 299)]


def test_id_lists() -> None:
    assert facts.parse_sample_ids("0-999, 120000") == [(0, 999), (120000, 120000)]
    assert parts_for_ids("0-999,120000") == ["SynthHuman_0000.zip", "SynthHuman_0024.zip"]
    for bad in ("5-3", "x", "298008", ""):
        with pytest.raises(ConfigError):
            facts.parse_sample_ids(bad)


def record(name: str, data: bytes, *, method: int = 0, header_name: str | None = None) -> bytes:
    raw_name = (header_name or name).encode()
    header = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, zlib.crc32(data), len(data), len(data),
        len(raw_name), 0,
    )  # fmt: skip
    return header + raw_name + data


@pytest.mark.parametrize("split", [1, 7, 1000])
def test_a_member_is_checked_whatever_the_chunks(split: int) -> None:
    data = b"pixels " * 100
    blob = record("rgb_0000001.png", data)
    member = MemberTask(
        sample_id=1, name="rgb_0000001.png", offset=0, end_offset=len(blob),
        compressed_size=len(data), size=len(data), crc32=zlib.crc32(data), method=0,
    )  # fmt: skip
    stream = MemberStream(member)
    for at in range(0, len(blob), split):
        stream.feed(memoryview(blob[at : at + split]))
    assert stream.result() == data

    wrong = MemberStream(member)
    wrong.feed(memoryview(record("rgb_0000001.png", data, header_name="rgb_0000002.png")))
    with pytest.raises(VerificationError, match="local header differs from the central directory in: name .'rgb_0000002.png'"):
        wrong.result()
    short = MemberStream(member)
    short.feed(memoryview(blob[:-10]))
    with pytest.raises(VerificationError, match="data truncated"):
        short.result()


def _part(name: str, rows: list[tuple[int, str]]):  # type: ignore[no-untyped-def]
    """A catalogued part listing ``(sample_id, kind)`` members, 100 bytes apart."""
    import pyarrow as pa

    from david_data import facts
    from david_data.catalog.directory import SCHEMA, PartCatalog
    from david_data.catalog.remote import PartVersion

    table = pa.table(
        {
            "sample_id": [s for s, _ in rows],
            "part": [name] * len(rows),
            "member": [facts.member_name(k, s) for s, k in rows],
            "kind": [k for _, k in rows],
            "offset": [100 * i for i in range(len(rows))],
            "end_offset": [100 * i + 100 for i in range(len(rows))],
            "compressed_size": [10 + i for i in range(len(rows))],
            "size": [20] * len(rows),
            "crc32": [i for i in range(len(rows))],
            "method": [0] * len(rows),
        },
        schema=SCHEMA,
    )
    return PartCatalog(name=name, url=name, version=PartVersion(size=1, version="x"), table=table)


def test_ids_are_selected_without_sql_exactly_as_with_it() -> None:
    from david_data import facts
    from david_data.catalog import select
    from david_data.catalog.catalog import Catalog, CatalogSource

    kinds = list(facts.FILE_KINDS)
    # Sample 5001 is listed by two parts (the first by name wins) and lacks a file in
    # one; 98039/98040 straddle two scenarios; 5003 lacks its depth.
    first = _part(
        "SynthHuman_0001.zip",
        [(s, k) for s in (5000, 5001, 5002) for k in kinds]
        + [(5003, k) for k in kinds if k != "depth"],
    )
    second = _part(
        "SynthHuman_0000.zip",
        [(5001, k) for k in kinds[:3]] + [(s, k) for s in (98039, 98040) for k in kinds],
    )
    catalog = Catalog(source=CatalogSource(base="http://h/"), parts=(first, second))
    for spec in ("5000-5003", "5001", "5003,5000", "98039-98040,5001-5002"):
        fast = select._select_ids(catalog, spec)
        assert fast is not None
        sql = select._select_sql(catalog, select.Selection(ids=spec))
        assert [row._asdict() for row in fast] == sql.to_pylist(), spec
    # A requested id no part lists: the same error either way.
    with pytest.raises(ConfigError) as fast_error:
        select._select_ids(catalog, "5000,6000")
    with pytest.raises(ConfigError) as sql_error:
        select._select_sql(catalog, select.Selection(ids="5000,6000"))
    assert fast_error.value.message == sql_error.value.message
