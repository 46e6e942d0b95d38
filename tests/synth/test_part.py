"""Zip parts: real layout, every option, ZIP64 records, overrides, streaming, atomicity."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import tracemalloc
import zipfile

import fsspec
import numpy as np
import pytest

from david_data.errors import ConfigError, SampleDecodeError
from david_data.exr import read_depth_exr
from david_data.facts import FILE_KINDS, member_name, parse_member_name
from david_data.synth import (
    SynthOptions,
    encode_sample,
    generator,
    part_sample_ids,
    sample_arrays,
    write_extracted,
    write_part,
    write_parts,
)

IDS = (0, 1, 2)

EOCD64, LOCATOR64, EOCD = b"PK\x06\x06", b"PK\x06\x07", b"PK\x05\x06"


def _tail_records(data: bytes) -> dict[str, int]:
    """Offsets of the end records, found from the end like a reader does."""
    eocd = data.rfind(EOCD)
    found = {"eocd": eocd}
    if data[eocd - 20 : eocd - 16] == LOCATOR64:
        found["locator"] = eocd - 20
        (found["eocd64"],) = struct.unpack_from("<Q", data, eocd - 20 + 8)
    return found


@pytest.mark.parametrize("compression", ["stored", "deflated"])
@pytest.mark.parametrize("folder", [None, "SynthHuman"])
def test_part_holds_five_files_per_sample_in_the_real_layout(tmp_path, compression, folder, decode):
    options = SynthOptions(compression=compression, folder=folder)
    info = write_part(tmp_path / "SynthHuman_0000.zip", IDS, options)
    data = (tmp_path / "SynthHuman_0000.zip").read_bytes()
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sample_ids == IDS

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # every CRC checks out
        names = zf.namelist()
        assert names == list(info.members)
        want = [options.member_path(member_name(k, i)) for i in IDS for k in FILE_KINDS]
        assert names == want and len(names) == 5 * len(IDS)
        for entry in zf.infolist():
            assert entry.compress_type == (
                zipfile.ZIP_DEFLATED if compression == "deflated" else zipfile.ZIP_STORED
            )
            assert (entry.filename.split("/")[0] == folder) if folder else "/" not in entry.filename
            ref = parse_member_name(entry.filename)
            assert ref is not None and f"_{ref.sample_id:07d}." in entry.filename
        files = {n: zf.read(n) for n in names if parse_member_name(n).sample_id == 2}
    assert files == {options.member_path(k): v for k, v in encode_sample(2, options).items()}
    back = decode(files)
    np.testing.assert_array_equal(back["rgb"], sample_arrays(2)["rgb"])
    assert back["rgb"].shape == (512, 384, 3)
    assert "locator" not in _tail_records(data), "a small plain part has no ZIP64 records"


def test_zip64_part_has_zip64_records_everywhere_and_reads_the_same(tmp_path):
    plain = write_part(tmp_path / "plain.zip", IDS)
    forced = write_part(tmp_path / "z64.zip", IDS, SynthOptions(zip64=True))
    data = (tmp_path / "z64.zip").read_bytes()

    tail = _tail_records(data)
    assert "locator" in tail, "ZIP64 end-of-central-directory locator missing"
    assert data[tail["eocd64"] : tail["eocd64"] + 4] == EOCD64
    count, _, cd_size, cd_offset = struct.unpack_from("<QQQQ", data, tail["eocd64"] + 24)
    assert count == 15 and data[cd_offset : cd_offset + 4] == b"PK\x01\x02"
    assert tail["eocd64"] == cd_offset + cd_size
    # The classic end record defers to the ZIP64 one.
    entries, size32, offset32 = struct.unpack_from("<HII", data, tail["eocd"] + 10)
    assert (entries, size32, offset32) == (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)

    with zipfile.ZipFile(io.BytesIO(data)) as zf, zipfile.ZipFile(tmp_path / "plain.zip") as zp:
        assert zf.testzip() is None
        for entry in zf.infolist():
            # Central header: sizes and offset deferred to a ZIP64 extra field (id 1).
            assert struct.unpack("<HHQQQ", entry.extra) == (
                1,
                24,
                entry.file_size,
                entry.compress_size,
                entry.header_offset,
            )
            local = data[entry.header_offset : entry.header_offset + 30]
            csize, usize, name_len, extra_len = struct.unpack_from("<IIHH", local, 18)
            assert (csize, usize) == (0xFFFFFFFF, 0xFFFFFFFF)
            extra = data[entry.header_offset + 30 + name_len :][:extra_len]
            assert struct.unpack_from("<HHQQ", extra) == (
                1,
                16,
                entry.file_size,
                entry.compress_size,
            )
            assert zf.read(entry) == zp.read(entry.filename)
    assert forced.members == plain.members and forced.sha256 != plain.sha256


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip not installed")
@pytest.mark.parametrize(
    "options",
    [SynthOptions(zip64=True), SynthOptions(zip64=True, compression="deflated", folder="d")],
)
def test_info_zip_accepts_the_parts(tmp_path, options):
    write_part(tmp_path / "p.zip", IDS[:2], options)
    out = subprocess.run(["unzip", "-tq", str(tmp_path / "p.zip")], capture_output=True, text=True)
    assert out.returncode == 0 and "No errors" in out.stdout, out.stdout + out.stderr


def test_any_number_of_samples(tmp_path):
    ids = list(range(10, 17))
    info = write_part(tmp_path / "p.zip", ids)
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        assert len(zf.namelist()) == 35
        assert {parse_member_name(n).sample_id for n in zf.namelist()} == set(ids)
    assert info.sample_ids == tuple(ids)
    with pytest.raises(ConfigError, match="repeat"):
        write_part(tmp_path / "dup.zip", [1, 1])


def test_same_input_gives_identical_bytes_on_every_destination(tmp_path):
    a = write_part(tmp_path / "a.zip", IDS)
    b = write_part(tmp_path / "b.zip", IDS)
    stream = io.BytesIO()
    c = write_part(stream, IDS)
    assert a.sha256 == b.sha256 == c.sha256 == hashlib.sha256(stream.getvalue()).hexdigest()
    assert (tmp_path / "a.zip").read_bytes() == stream.getvalue()
    assert c.path is None


class _WriteOnly(io.RawIOBase):
    """A sequential sink that cannot seek or tell, like a network upload."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def test_parts_stream_to_a_sink_that_cannot_seek():
    sink = _WriteOnly()
    info = write_part(sink, IDS[:2], SynthOptions(zip64=True, compression="deflated"))
    data = b"".join(sink.chunks)
    assert len(data) == info.size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 10


def test_fsspec_url_destination():
    url = "memory://synth-test/SynthHuman_0003.zip"
    info = write_part(url, [15_000], SynthOptions(folder="x"))
    fs = fsspec.filesystem("memory")
    data = fs.cat_file("/synth-test/SynthHuman_0003.zip")
    assert hashlib.sha256(data).hexdigest() == info.sha256
    with fsspec.open(info.path, "rb") as handle:  # the reported URL reopens the part
        assert handle.read() == data
    assert fs.ls("/synth-test", detail=False) == ["/synth-test/SynthHuman_0003.zip"]
    fs.rm("/synth-test", recursive=True)


def test_a_failure_midway_leaves_no_part(tmp_path, monkeypatch):
    real = generator.encode_sample

    def failing(sample_id, options):
        if sample_id == 2:
            raise RuntimeError("disk on fire")
        return real(sample_id, options)

    monkeypatch.setattr(generator, "encode_sample", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_part(tmp_path / "SynthHuman_0000.zip", IDS)
    assert list(tmp_path.iterdir()) == []


def test_overrides_build_corrupt_incomplete_and_unsafe_parts(tmp_path):
    overrides = {
        "depth_0000001.exr": b"not an exr",  # corrupt member with a valid CRC
        "normal_0000002.exr": None,  # missing member
        "notes.txt": b"stray",  # extra member, inside the folder
        "../evil.txt": b"escape",  # unsafe name, verbatim
    }
    info = write_part(tmp_path / "p.zip", IDS, SynthOptions(folder="F"), overrides)
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        assert "F/normal_0000002.exr" not in names
        assert names[-2:] == ["F/notes.txt", "../evil.txt"]
        assert len(names) == 15 - 1 + 2 and names == list(info.members)
        assert zf.read("F/depth_0000001.exr") == b"not an exr"
        with pytest.raises(SampleDecodeError, match="depth_0000001.exr"):
            read_depth_exr(zf.read("F/depth_0000001.exr"), "depth_0000001.exr")
        # Untouched members are as generated.
        assert zf.read("F/depth_0000002.exr") == encode_sample(2)["depth_0000002.exr"]

    with pytest.raises(ConfigError, match="rgb_0000009.png"):
        write_part(tmp_path / "q.zip", IDS, overrides={"rgb_0000009.png": None})
    assert not (tmp_path / "q.zip").exists()


def test_memory_stays_flat_as_parts_grow(tmp_path):
    write_part(io.BytesIO(), range(98_040, 98_043))  # warm the per-render caches of the scenario
    peaks = []
    for count in (2, 8):
        tracemalloc.start()
        write_part(tmp_path / f"{count}.zip", range(98_040, 98_040 + count))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] + 1_000_000, peaks


def test_write_parts_numbers_samples_like_the_real_parts(tmp_path):
    names = ["SynthHuman_sample.zip", "SynthHuman_0000.zip", "SynthHuman_0002.zip"]
    paths = write_parts(tmp_path / "parts", names, 2, SynthOptions(zip64=True))
    assert [p.name for p in paths] == names
    ids = {}
    for path in paths:
        with zipfile.ZipFile(path) as zf:
            ids[path.name] = sorted({parse_member_name(n).sample_id for n in zf.namelist()})
    assert ids == {
        "SynthHuman_sample.zip": [0],
        "SynthHuman_0000.zip": [0, 1],
        "SynthHuman_0002.zip": [10_000, 10_001],
    }
    assert part_sample_ids("SynthHuman_0059.zip", 5000) == range(295_000, 298_008)
    for bad in (0, 5001):
        with pytest.raises(ConfigError):
            part_sample_ids("SynthHuman_0001.zip", bad)
    with pytest.raises(ConfigError):
        part_sample_ids("other.zip", 1)


@pytest.mark.parametrize("folder", [None, "inner"])
def test_write_extracted_gives_the_official_layout(tmp_path, folder):
    options = SynthOptions(folder=folder, pixel_type="float")
    root = write_extracted(tmp_path, [5, 98_045], options)
    base = tmp_path / "SynthHuman" / (folder or "")
    assert root == str(tmp_path / "SynthHuman")
    files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    want = sorted(list(encode_sample(5, options)) + list(encode_sample(98_045, options)))
    assert files == want
    for name, data in encode_sample(98_045, options).items():
        assert (base / name).read_bytes() == data
