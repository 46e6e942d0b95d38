"""The zip layer's own promises: a bad offset or size is a typed error or a named
problem, never a loop or a read outside the file; a deflated member passes only if its
stream ends exactly at its compressed size; every reader of the project agrees."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import fsspec
import pytest
from zipflip_helpers import MEMBERS, build_part, flipped, layout_of

from david_data.catalog.directory import read_part
from david_data.catalog.member import MemberStream, MemberTask
from david_data.catalog.remote import PartVersion
from david_data.errors import SampleDecodeError, VerificationError, ZipFormatError
from david_data.mirror import RetryPolicy
from david_data.mirror.zipcheck import check_zip
from david_data.sources.zip import list_members, read_members
from david_data.zipformat import MemberReader, MemberSpec, read_layout


@pytest.mark.timeout(10)
def test_a_flipped_offset_byte_is_a_named_problem_not_a_hang() -> None:
    """Issue 15: flipping the first byte of a local-header offset in the directory of a
    3.5 KB zip made ``check_zip`` step backwards forever (the record it then pointed at
    was shorter than a local header)."""
    good = build_part()
    assert 3000 < len(good) < 4000
    bad = flipped(good, layout_of(good).offset_fields[0])
    check = check_zip(io.BytesIO(bad), len(bad))
    assert not check.ok
    assert "rgb_0000000.png" in {p.member for p in check.problems}


def test_an_offset_past_the_directory_is_a_typed_error_naming_the_member(tmp_path: Path) -> None:
    good = build_part()
    bad = flipped(good, layout_of(good).offset_fields[2] + 1)  # depth's offset, second byte
    with pytest.raises(ZipFormatError) as caught:
        read_layout(io.BytesIO(bad), len(bad))
    assert caught.value.member == "depth_0000000.exr"  # type: ignore[attr-defined]
    assert "depth_0000000.exr" in str(caught.value)
    path = tmp_path / "SynthHuman_0000.zip"
    path.write_bytes(bad)
    with pytest.raises(VerificationError, match=r"SynthHuman_0000\.zip.*depth_0000000\.exr"):
        read_part(
            path.name, str(path), PartVersion(size=len(bad), version=None), policy=RetryPolicy()
        )
    with pytest.raises(VerificationError, match="not a readable zip.*depth_0000000.exr"):
        list_members(fsspec.filesystem("file"), str(path))


def _deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _record(name: str, payload: bytes, crc: int, size: int) -> bytes:
    raw = name.encode()
    header = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(payload), size, len(raw), 0
    )
    return header + raw + payload


def _task(record: bytes, payload: bytes, crc: int, size: int) -> MemberTask:
    return MemberTask(
        sample_id=0,
        name="cam_0000000.txt",
        offset=0,
        end_offset=len(record),
        compressed_size=len(payload),
        size=size,
        crc32=crc,
        method=8,
    )


def test_a_deflate_stream_must_end_exactly_at_its_compressed_size() -> None:
    """Both fail on the old reader: it never looked at the stream's end."""
    content = b"500 0 192\n0 500 256\n0 0 1\n" * 20
    crc, good = zlib.crc32(content), _deflated(content)
    for payload, message in (
        (good + b"\x00", "ends 1 bytes before its recorded compressed size"),
        (good[:-1] + bytes([good[-1] ^ 0xFF]), "does not end at its recorded compressed size"),
    ):
        record = _record("cam_0000000.txt", payload, crc, len(content))
        stream = MemberStream(_task(record, payload, crc, len(content)))
        stream.feed(memoryview(record))
        with pytest.raises(VerificationError, match=message):
            stream.result()
    record = _record("cam_0000000.txt", good, crc, len(content))
    stream = MemberStream(_task(record, good, crc, len(content)))
    stream.feed(memoryview(record))
    assert stream.result() == content


@pytest.mark.parametrize("split", [1, 13, 4096])
def test_the_reader_never_takes_a_byte_past_its_record(split: int) -> None:
    content = bytes(range(256)) * 3
    payload = _deflated(content)
    record = _record("cam_0000000.txt", payload, zlib.crc32(content), len(content))
    spec = MemberSpec(
        name="cam_0000000.txt",
        offset=100,
        method=8,
        crc=zlib.crc32(content),
        compressed_size=len(payload),
        size=len(content),
    )
    stream = record + b"PK\x03\x04 the next record"
    reader = MemberReader(spec, end=100 + len(record), keep=True)
    taken = 0
    for at in range(0, len(stream), split):
        taken += reader.feed(memoryview(stream[at : at + split]))
    assert taken == len(record) and reader.done and reader.content() == content
    short = MemberReader(spec, end=100 + 29)  # no room for a local header
    assert short.done and short.broken and short.feed(memoryview(stream)) == 0
    cut = MemberReader(spec, end=100 + 40)  # the header's name runs past the end
    assert cut.feed(memoryview(stream)) <= 40 and cut.broken


def test_convert_reads_in_place_with_the_same_checks(tmp_path: Path) -> None:
    good = build_part()
    layout = layout_of(good)
    name, _, data = layout.data[-1]  # deflated
    path = tmp_path / "part.zip"
    path.write_bytes(flipped(good, data[-1]))
    fs = fsspec.filesystem("file")
    members = list_members(fs, str(path))
    assert [m.name for m in members] == [n for n, _, _ in layout.data]
    got = dict(read_members(fs, str(path), len(good), members))
    bad = [m.name for m, value in got.items() if isinstance(value, SampleDecodeError)]
    assert bad == [name]
    assert all(isinstance(v, bytes) for m, v in got.items() if m.name != name)


def test_every_reader_agrees_with_zipfile_on_a_good_part() -> None:
    import zipfile

    for zip64 in (False, True):
        good = build_part(zip64=zip64)
        layout = read_layout(io.BytesIO(good), len(good))
        with zipfile.ZipFile(io.BytesIO(good)) as archive:
            infos = archive.infolist()
            assert [
                (e.name, e.offset, e.compressed_size, e.size, e.crc) for e in layout.entries
            ] == [(i.filename, i.header_offset, i.compress_size, i.file_size, i.CRC) for i in infos]
            for entry in layout.entries:
                reader = MemberReader(entry, end=len(good), keep=True)
                reader.feed(memoryview(good)[entry.offset :])
                assert reader.content() == archive.read(entry.name)


def test_extraction_checks_each_member_and_leaves_no_damaged_file(tmp_path: Path) -> None:
    from david_data.mirror.extract import extract_zip

    good = build_part()
    fs = fsspec.filesystem("file")
    assert extract_zip(io.BytesIO(good), "p.zip", fs, str(tmp_path / "ok")) == 5
    for name, _, content in MEMBERS:
        assert (tmp_path / "ok" / "SynthHuman" / name).read_bytes() == content
    name, _, data = layout_of(good).data[-1]  # deflated: its stream's last byte
    with pytest.raises(VerificationError, match=f"p.zip: member {name}: its deflate stream"):
        extract_zip(io.BytesIO(flipped(good, data[-1])), "p.zip", fs, str(tmp_path / "bad"))
    assert not (tmp_path / "bad" / "SynthHuman" / name).exists()
