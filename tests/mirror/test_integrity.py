"""Issue 8, "no byte of a part goes unchecked": every byte is covered by a CRC-32, by
equality with the central directory, or by a second read from the server; a byte
flipped in flight is re-fetched; a part that stays wrong fails by name, never lands."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from mirror_helpers import FAST, flip_byte

from david_data.mirror import MirrorSettings, mirror, verify_mirror
from david_data.mirror.zipcheck import check_zip
from david_data.synth._zipwriter import ZipStreamWriter
from david_data.synth.generator import SynthOptions, encode_sample, write_part
from david_data.synth.host import Fault, LocalHost

NAME = "SynthHuman_0000.zip"


def _part(options: SynthOptions = SynthOptions()) -> bytes:  # noqa: B008
    buffer = io.BytesIO()
    write_part(buffer, (0, 1), options)
    return buffer.getvalue()


def _served(tmp_path: Path, data: bytes) -> Path:
    """A folder for the host holding ``data`` as the part NAME."""
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(data)
    return served


def _offsets(data: bytes) -> dict[str, int]:
    """Where to flip: a local header's time, a central-directory-only field, the end
    record's entry count (and the ZIP64 end record's size field when there is one)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = archive.infolist()[3]
        start_dir = archive.start_dir
    size = len(data)
    offsets = {
        "local header": member.header_offset + 10,  # modification time
        "central directory": start_dir + 38,  # first entry's external attributes
        "end record": size - 22 + 8,  # entries on this disk
    }
    if data[size - 42 : size - 38] == b"PK\x06\x07":
        offsets["zip64 end record"] = size - 22 - 20 - 56 + 40  # central directory size
    return offsets


def _check(data: bytes, server: bytes | None = None):  # type: ignore[no-untyped-def]
    confirm = None
    if server is not None:

        def confirm(offset: int, length: int) -> bytes:
            return server[offset : offset + length]

    return check_zip(io.BytesIO(data), len(data), confirm=confirm)


def test_a_flipped_local_header_field_is_named_with_its_range() -> None:
    data = bytearray(_part())
    offset = _offsets(bytes(data))["local header"]
    data[offset] ^= 0xFF
    check = _check(bytes(data))
    (problem,) = check.problems
    assert (
        "local header differs from the central directory in: modification time" in problem.problem
    )
    assert problem.member == "normal_0000000.exr"
    assert problem.start is not None and problem.start <= offset < (problem.end or 0)


def test_the_central_directory_is_compared_with_a_second_read() -> None:
    good = _part()
    data = bytearray(good)
    data[_offsets(good)["central directory"]] ^= 0x01
    assert _check(bytes(data)).ok  # at rest only the SHA-256 covers this byte
    check = _check(bytes(data), server=good)
    (problem,) = check.problems
    assert "differ between two reads from the server" in problem.problem
    assert check.ranges() == [(zipfile.ZipFile(io.BytesIO(good)).start_dir, len(good))]
    assert _check(good, server=good).ok


def test_an_unaccounted_gap_between_members_is_a_problem() -> None:
    buffer = io.BytesIO()
    writer = ZipStreamWriter(buffer)
    files = encode_sample(0, SynthOptions())
    for i, (name, payload) in enumerate(files.items()):
        writer.add(name, payload)
        if i == 1:
            writer._write(b"hidden!")  # bytes no member accounts for
    writer.close()
    data = buffer.getvalue()
    problems = _check(data).problems
    assert [p.problem for p in problems] == [
        f"7 bytes at offset {data.index(b'hidden!')} belong to no member"
    ]


def test_data_descriptors_are_checked_not_flagged() -> None:
    """A zip written to a pipe (CRC and sizes after the data) passes, and a flipped
    descriptor byte is named."""

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b):  # type: ignore[no-untyped-def]
            self.data += b
            return len(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w") as archive:  # type: ignore[arg-type]
        for name, payload in encode_sample(0, SynthOptions()).items():
            archive.writestr(name, payload)
    data = bytes(pipe.data)
    assert struct.unpack_from("<H", data, 6)[0] & 0x08  # it really used descriptors
    assert _check(data).ok, _check(data).problems
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        second = archive.infolist()[1].header_offset
    broken = bytearray(data)
    broken[second - 5] ^= 0xFF  # inside the first member's descriptor
    (problem,) = _check(bytes(broken)).problems
    assert problem.member == "rgb_0000000.png" and "data descriptor" in problem.problem


def test_local_extra_fields_the_directory_does_not_repeat_are_read_again() -> None:
    """Info-ZIP style: the local header carries bytes the central directory does not;
    they are compared with a second read from the server."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in encode_sample(0, SynthOptions()).items():
            info = zipfile.ZipInfo(name, date_time=(2025, 6, 1, 12, 0, 0))
            info.extra = struct.pack("<HHB4s", 0x5455, 5, 1, b"\x00\x00\x00\x00")
            archive.writestr(info, payload)
    data = bytearray(buffer.getvalue())
    at = data.index(b"UT\x05\x00") + 5  # the first local header's timestamp bytes
    data[at] ^= 0x5A
    server = bytes(data)  # the server's copy has a local field the directory lacks
    assert _check(server, server=server).ok
    in_flight = bytearray(server)
    in_flight[at] ^= 0x01
    (problem,) = _check(bytes(in_flight), server=server).problems
    assert problem.member == "rgb_0000000.png"
    assert "differs between two reads from the server" in problem.problem


@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64"])
def test_acceptance_1_a_byte_flipped_in_flight_lands_identical(tmp_path: Path, zip64: bool) -> None:
    """One run per place (local header, central directory, end record(s)): the byte is
    flipped on the wire once; the part is repaired and lands byte-identical."""
    data = _part(SynthOptions(zip64=zip64))
    served = _served(tmp_path, data)
    for where, offset in _offsets(data).items():
        dest = tmp_path / where.replace(" ", "-")
        with LocalHost(served) as host:
            armed = host.faults.add(Fault.corrupt(offset), times=1, path=NAME)
            report = mirror(
                MirrorSettings(dest=str(dest), parts=(NAME,), base_url=host.base_url, policy=FAST)
            )
        assert armed.fired == 1, where
        assert not report.failed, (where, report.summary())
        assert (dest / NAME).read_bytes() == data, where
        assert verify_mirror(str(dest)).ok


@pytest.mark.parametrize("where", ["local header", "end record"])
def test_acceptance_1_a_byte_wrong_on_every_read_fails_by_name(tmp_path: Path, where: str) -> None:
    data = _part()
    served = _served(tmp_path, data)
    dest = tmp_path / "dest"
    with LocalHost(served) as host:
        host.faults.add(Fault.corrupt(_offsets(data)[where]), times=None, path=NAME)
        report = mirror(
            MirrorSettings(dest=str(dest), parts=(NAME,), base_url=host.base_url, policy=FAST)
        )
    (failed,) = report.failed
    assert failed.name == NAME and "server's copy is corrupt" in failed.error
    assert f"FAILED {NAME}" in report.summary()
    assert not (dest / NAME).exists()


def test_verify_names_a_damaged_local_header_at_rest(tmp_path: Path) -> None:
    data = _part()
    served = _served(tmp_path, data)
    dest = tmp_path / "dest"
    with LocalHost(served) as host:
        settings = MirrorSettings(dest=str(dest), parts=(NAME,), base_url=host.base_url)
        assert not mirror(settings).failed
    flip_byte(dest / NAME, _offsets(data)["local header"])
    report = verify_mirror(str(dest), record=False)
    text = report.render()
    assert not report.ok and "normal_0000000.exr" in text and "modification time" in text
