"""The sample catalog: built from central directories with a handful of ranged requests,
cached per part version, queried read-only; over HTTP, a local mirror and Azurite."""

from __future__ import annotations

import json
import os
import signal
import zipfile
from pathlib import Path

import fsspec
import pytest
from catalog_helpers import FAST, PARTS

from david_data import facts
from david_data.catalog import load_catalog, open_catalog_source
from david_data.cli import main
from david_data.errors import ConfigError
from david_data.synth.generator import write_part
from david_data.synth.host import Fault, LocalHost

NAMES = list(PARTS)


def test_catalog_lists_every_member_as_the_zip_says(host: LocalHost, served: Path) -> None:
    catalog = load_catalog(open_catalog_source(host.base_url), NAMES, policy=FAST)
    assert not catalog.errors
    rows = {(r["part"], r["member"]): r for r in catalog.members.to_pylist()}
    expected = 0
    for name in NAMES:
        data = (served / name).read_bytes()
        with zipfile.ZipFile(served / name) as archive:
            for info in archive.infolist():
                expected += 1
                row = rows[(name, info.filename)]
                ref = facts.parse_member_name(info.filename)
                assert ref is not None
                assert (row["sample_id"], row["kind"]) == (ref.sample_id, ref.kind)
                assert row["offset"] == info.header_offset
                assert (row["compressed_size"], row["size"]) == (info.compress_size, info.file_size)
                assert (row["crc32"], row["method"]) == (info.CRC, info.compress_type)
                # The record [offset, end_offset) holds the header and data, no more.
                assert data[row["offset"] : row["offset"] + 4] == b"PK\x03\x04"
                assert data[row["end_offset"] : row["end_offset"] + 4] in (
                    b"PK\x03\x04",
                    b"PK\x01\x02",
                )
    assert len(rows) == expected
    result = catalog.query("SELECT scenario, count(*) AS n FROM samples WHERE complete GROUP BY 1")
    by_scenario = dict(
        zip(result.column("scenario").to_pylist(), result.column("n").to_pylist(), strict=True)
    )
    # part 0: 3 faces; part 19: 3 faces + 3 full body; part 39: 3 full body + 3 upper body
    assert by_scenario == {"face": 6, "full_body": 6, "upper_body": 3}


def test_catalog_takes_a_handful_of_requests_then_only_heads(host: LocalHost, served: Path) -> None:
    source = open_catalog_source(host.base_url)
    load_catalog(source, NAMES, policy=FAST)
    for name in NAMES:
        requests = host.stats.requests_for(name)
        assert [r.method for r in requests].count("HEAD") == 1
        gets = [r for r in requests if r.method == "GET"]
        # The last KiB, then the rest of the directory if it starts before: each range
        # read twice at once (the confirmation).
        ranges = [r.range for r in gets]
        assert len(gets) in (2, 4) and all(ranges.count(r) == 2 for r in ranges), gets
        for get in gets:  # closed ranges, guarded by the ETag
            assert get.range is not None and get.range.split("=")[1].split("-")[1]
            assert get.if_match == host.etag(name)
            assert get.status == 206
    host.reset_stats()
    again = load_catalog(source, NAMES, policy=FAST)
    assert [r.method for r in host.stats.requests] == ["HEAD"] * len(NAMES)
    assert again.requests == 0
    assert again.members.equals(load_catalog(source, NAMES, policy=FAST).members)

    # A part replaced on the server is read again; the others still come from the cache.
    write_part(served / "new.zip", range(0, 2))
    host.replace(NAMES[0], (served / "new.zip").read_bytes())
    host.reset_stats()
    changed = load_catalog(source, NAMES, policy=FAST)
    gets = {r.path for r in host.stats.requests if r.method == "GET"}
    assert gets == {NAMES[0]}
    ids = changed.query(f"SELECT sample_id FROM samples WHERE part = '{NAMES[0]}'")
    assert ids.column(0).to_pylist() == [0, 1]


def test_either_cache_form_serves_the_other(host: LocalHost, served: Path) -> None:
    # A fetch caches plain columns (JSON), SQL a Parquet table: each reads the other's
    # file when its own is missing (HEADs only), to the same members; storing a fresh
    # reading in one form removes the other, which may hold an older reading.
    from david_data.catalog.cache import cache_folder

    source = open_catalog_source(host.base_url)
    fresh = load_catalog(source, NAMES, policy=FAST, refresh=NAMES, table=False)
    folder = cache_folder(source.base)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.json" for n in NAMES)
    for table_first in (True, False):
        host.reset_stats()
        cached = load_catalog(source, NAMES, policy=FAST, table=table_first)
        assert [r.method for r in host.stats.requests] == ["HEAD"] * len(NAMES)
        assert cached.members.equals(fresh.members)
        assert all(p.same_members(q) for p, q in zip(cached.parts, fresh.parts, strict=True))
    load_catalog(source, NAMES, policy=FAST, refresh=NAMES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.parquet" for n in NAMES)
    host.reset_stats()
    from_table = load_catalog(source, NAMES, policy=FAST, table=False)
    assert [r.method for r in host.stats.requests] == ["HEAD"] * len(NAMES)
    assert [p.column("crc32") for p in from_table.parts] == [p.column("crc32") for p in fresh.parts]


@pytest.mark.parametrize(
    "damage", ["truncated", "a string offset", "a float crc32", "a column short", "other url"]
)
def test_a_damaged_columns_cache_file_is_read_again(
    host: LocalHost, served: Path, damage: str
) -> None:
    from david_data.catalog.cache import cache_folder

    source = open_catalog_source(host.base_url)
    first = load_catalog(source, NAMES[:1], policy=FAST, table=False)
    path = cache_folder(source.base) / f"{NAMES[0]}.json"
    raw = path.read_bytes()
    body = json.loads(raw)
    columns = body["columns"]
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        if damage == "a string offset":
            columns["offset"][0] = "12"
        elif damage == "a float crc32":
            columns["crc32"][-1] = 1.5
        elif damage == "a column short":
            columns["size"].pop()
        else:
            body["url"] = "http://elsewhere/part.zip"
        path.write_text(json.dumps(body))
    host.reset_stats()
    again = load_catalog(source, NAMES[:1], policy=FAST, table=False)
    assert "GET" in [r.method for r in host.stats.requests]  # not taken from the cache
    assert again.parts[0].same_members(first.parts[0])
    assert json.loads(path.read_bytes()) == json.loads(raw)  # and cached again


def test_a_large_central_directory_is_read_in_one_confirmed_request(tmp_path: Path) -> None:
    # 2,400 tiny members: a central directory of ~100 KB, beyond the first 64 KiB read.
    name = "SynthHuman_0001.zip"
    with zipfile.ZipFile(tmp_path / name, "w") as archive:
        for sid in range(5000, 5480):
            for kind, file_name in facts.sample_member_names(sid).items():
                archive.writestr(file_name, f"{kind} {sid}".encode())
    with LocalHost(tmp_path) as host:
        catalog = load_catalog(open_catalog_source(host.base_url), [name], policy=FAST)
        # the end records, then the whole directory, each read twice at once
        assert [r.method for r in host.stats.requests] == ["HEAD"] + ["GET"] * 4
        ranges = [r.range for r in host.stats.requests[1:]]
        assert all(ranges.count(r) == 2 for r in ranges)
    assert catalog.members.num_rows == 2400
    assert catalog.query("SELECT count(*) FROM samples WHERE complete").column(0)[0].as_py() == 480


def test_a_long_zip_comment_is_read_through(tmp_path: Path) -> None:
    # A 3 KB comment pushes the end record out of the first KiB read: the reader looks
    # again in the largest tail a comment allows, and lists every member as zipfile does.
    name = "SynthHuman_0001.zip"
    with zipfile.ZipFile(tmp_path / name, "w") as archive:
        for sid in range(5000, 5004):
            for kind, file_name in facts.sample_member_names(sid).items():
                archive.writestr(file_name, f"{kind} {sid}".encode())
        archive.comment = b"a long archive comment; " * 125
    with zipfile.ZipFile(tmp_path / name) as archive:
        expected = {(i.filename, i.header_offset, i.CRC) for i in archive.infolist()}
    with LocalHost(tmp_path) as host:
        catalog = load_catalog(open_catalog_source(host.base_url), [name], policy=FAST)
        ranges = [r.range for r in host.stats.requests if r.method == "GET"]
    assert len(ranges) == 4 and all(ranges.count(r) == 2 for r in ranges)
    rows = catalog.members.to_pylist()
    assert {(r["member"], r["offset"], r["crc32"]) for r in rows} == expected


def test_queries_are_read_only(host: LocalHost) -> None:
    catalog = load_catalog(open_catalog_source(host.base_url), NAMES[:1], policy=FAST)
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SET enable_external_access = true",
    ):
        with pytest.raises(ConfigError, match="catalog query failed"):
            catalog.query(sql)


def test_cli_on_a_local_mirror(
    served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "--base-url", str(served)]) == 0
    out = capsys.readouterr().out
    assert "3 part(s), 15 samples" in out
    for name in NAMES:
        assert name in out
    assert "upper_body" in out

    sql = "SELECT part, count(*) AS n FROM samples GROUP BY part ORDER BY part"
    assert main(["catalog", "--base-url", str(served), sql, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"part": "SynthHuman_0000.zip", "n": 3},
        {"part": "SynthHuman_0019.zip", "n": 6},
        {"part": "SynthHuman_0039.zip", "n": 6},
    ]
    out_csv = tmp_path / "ids.csv"
    assert (
        main(
            [
                "catalog",
                "--base-url",
                str(served),
                "--parts",
                "19",
                "SELECT sample_id FROM samples",
                "-o",
                str(out_csv),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert out_csv.read_text().split() == ['"sample_id"'] + [str(i) for i in PARTS[NAMES[1]][0]]

    assert (
        main(["catalog", "--base-url", str(served), "SELECT * FROM read_text('/etc/passwd')"]) == 2
    )
    assert "disabled by configuration" in capsys.readouterr().err


def test_a_missing_part_is_reported_and_the_rest_listed(
    host: LocalHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "--base-url", host.base_url, "--parts", "0,1"]) == 1
    captured = capsys.readouterr()
    assert "SynthHuman_0001.zip is left out" in captured.err and "404" in captured.err
    assert "1 part(s), 3 samples" in captured.out


def test_a_server_ignoring_ranges_is_named(host: LocalHost) -> None:
    host.faults.add(Fault.ignore_range(), times=None)
    catalog = load_catalog(open_catalog_source(host.base_url), NAMES[:1], policy=FAST)
    ((name, reason),) = catalog.errors
    assert name == NAMES[0]
    assert f"127.0.0.1:{host.port} ignores byte ranges" in reason


@pytest.mark.azurite
def test_catalog_of_an_azure_mirror(
    azurite: object, az_container: str, served: Path, host: LocalHost
) -> None:
    options = azurite.storage_options  # type: ignore[attr-defined]
    fs = fsspec.filesystem("az", **options, skip_instance_cache=True)
    for name in NAMES:
        fs.put_file(str(served / name), f"{az_container.removeprefix('az://')}/mirror/{name}")
    on_azure = load_catalog(open_catalog_source(f"{az_container}/mirror", options), policy=FAST)
    over_http = load_catalog(open_catalog_source(host.base_url), NAMES, policy=FAST)
    assert not on_azure.errors
    assert [p.name for p in on_azure.parts] == NAMES
    assert all(p.version.version for p in on_azure.parts)  # the blobs' ETags
    assert on_azure.members.equals(over_http.members)


def test_a_forked_child_reads_directories_too(host: LocalHost) -> None:
    # The second reads run on a pool of threads; a forked child has none of them and
    # must start its own rather than wait forever on the parent's.
    source = open_catalog_source(host.base_url)
    first = load_catalog(source, NAMES[:1], policy=FAST, refresh=NAMES[:1])
    pid = os.fork()
    if pid == 0:  # the child: read the directory again, then leave at once
        signal.alarm(60)
        again = load_catalog(source, NAMES[:1], policy=FAST, refresh=NAMES[:1])
        os._exit(0 if again.members.equals(first.members) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
