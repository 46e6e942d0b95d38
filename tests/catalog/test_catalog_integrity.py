"""Issue 15, "nothing wrong passes silently", for the catalog and fetch: a directory read
with a byte flipped in flight is never used nor cached; a member that keeps failing
makes fetch read its part's directory again; a sample lacking a file is incomplete,
named with the file (exit 1); an entry whose name does not parse is reported; a
read-only DEST is one error line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from catalog_helpers import FAST, PARTS, members, tree

from david_data.catalog import PartCatalog, load_catalog, open_catalog_source
from david_data.catalog.cache import store_cached
from david_data.cli import main
from david_data.synth.generator import write_part
from david_data.synth.host import Fault, LocalHost

NAMES = list(PARTS)
PART = NAMES[0]  # samples 0-2, stored, no ZIP64: central-directory fields at fixed places
MEMBER = "depth_0000001.exr"
# Offsets inside a central-directory entry (APPNOTE 4.3.12).
FIELDS = {"crc": 16, "size": 20, "offset": 42, "name": 46}


def reference(served: Path) -> pa.Table:
    """The catalog of the parts as they are on disk (read from the folder, not the host)."""
    return load_catalog(open_catalog_source(str(served)), [PART], policy=FAST).members


def entry_at(part: Path, name: str) -> int:
    """Where ``name``'s central-directory entry starts (its name's last occurrence)."""
    return part.read_bytes().rfind(name.encode()) - 46


def fetch(host: LocalHost, dest: Path, *extra: str) -> int:
    return main(["fetch", str(dest), "--base-url", host.base_url, "--ids", "0-2", *extra])


@pytest.mark.parametrize("field", list(FIELDS))
def test_a_byte_flipped_in_the_directory_is_never_used_nor_cached(
    host: LocalHost, served: Path, tmp_path: Path, field: str
) -> None:
    flipped = host.faults.add(
        Fault.corrupt(entry_at(served / PART, MEMBER) + FIELDS[field]), times=1, path=PART
    )
    dest = tmp_path / "dest"
    assert fetch(host, dest, "--no-progress") == 0
    assert flipped.fired == 1
    assert tree(dest / "SynthHuman") == members(served / PART)  # every member, right
    # What the cache holds is the right reading: the next catalog sends only a HEAD.
    host.reset_stats()
    again = load_catalog(open_catalog_source(host.base_url), [PART], policy=FAST)
    assert [r.method for r in host.stats.requests] == ["HEAD"]
    assert again.members.equals(reference(served))
    assert fetch(host, dest, "--no-progress") == 0  # and a rerun has nothing to do


def test_a_wrong_cached_listing_is_read_again_when_a_member_fails(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cache entry that lists one member wrongly (a cache damaged on disk, or written
    # by a version that did not confirm its readings).
    source = open_catalog_source(host.base_url)
    (part,) = load_catalog(source, [PART], policy=FAST).parts
    table = part.table
    wrong = pc.if_else(
        pc.equal(table.column("member"), MEMBER),
        pc.bit_wise_xor(table.column("crc32"), pa.scalar(1, pa.int64())),
        table.column("crc32"),
    )
    bad = table.set_column(table.schema.get_field_index("crc32"), "crc32", wrong)
    store_cached(
        source.base, PartCatalog(name=part.name, url=part.url, version=part.version, table=bad)
    )

    dest = tmp_path / "dest"
    assert fetch(host, dest) == 0
    out = capsys.readouterr().out
    assert f"a member failed verification, catalog read again: {PART}" in out
    assert "3 of 3 samples complete" in out
    assert tree(dest / "SynthHuman") == members(served / PART)
    host.reset_stats()
    fixed = load_catalog(source, [PART], policy=FAST)  # the new reading replaced it
    assert [r.method for r in host.stats.requests] == ["HEAD"]
    assert fixed.members.equals(reference(served))


def test_a_sample_lacking_a_file_is_incomplete_and_named(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_part(tmp_path / "part.zip", range(0, 3), overrides={MEMBER: None})
    host.replace(PART, (tmp_path / "part.zip").read_bytes())
    dest = tmp_path / "dest"
    assert fetch(host, dest, "--dry-run") == 0
    assert f"sample 1 is incomplete in {PART}: it lacks {MEMBER}" in capsys.readouterr().out
    assert fetch(host, dest) == 1
    out = capsys.readouterr().out
    assert "2 of 3 samples complete" in out
    assert f"FAILED {MEMBER}: sample 1 is incomplete: {PART} does not list this member" in out
    assert {n for n in tree(dest / "SynthHuman")} == set(members(tmp_path / "part.zip"))

    assert main(["catalog", "--base-url", host.base_url, "--parts", "0"]) == 1
    captured = capsys.readouterr()
    assert f"warning: {PART}: sample 1 is incomplete: it lacks {MEMBER}" in captured.err
    assert "1 part(s), 3 samples" in captured.out


def test_an_entry_whose_name_does_not_parse_is_reported(
    host: LocalHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_part(tmp_path / "part.zip", range(0, 3), overrides={"notes.txt": b"hello"})
    host.replace(PART, (tmp_path / "part.zip").read_bytes())
    # An extra file harms no sample: named, never dropped silently, not a failure.
    assert main(["catalog", "--base-url", host.base_url, "--parts", "0"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {PART}: entry 'notes.txt' is not a SynthHuman sample file" in err
    dest = tmp_path / "dest"
    assert fetch(host, dest) == 0
    captured = capsys.readouterr()
    assert "3 of 3 samples complete" in captured.out
    assert f"{PART}: entry 'notes.txt' is not a SynthHuman sample file" in captured.err


def test_a_read_only_dest_is_one_error_line(
    host: LocalHost, read_only_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fetch(host, read_only_dir) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: cannot write to DEST"), errors
    assert "FAILED" not in captured.out + captured.err and "Traceback" not in captured.err
    assert not list(read_only_dir.iterdir())
