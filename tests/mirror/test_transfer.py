"""Verification while downloading: the one-pass zip check and the transfer schedule."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import replace
from pathlib import Path

import pytest
from mirror_helpers import FAST, flip_byte, member_data_offset

from david_data.mirror import zipcheck
from david_data.mirror.part import check_download
from david_data.mirror.segmented import FetchOptions, fetch_file, part_paths
from david_data.mirror.state import PartState, plan_segments
from david_data.mirror.transfer import TAIL_BYTES, Transfer, TransferReader
from david_data.net.http import HttpClient
from david_data.synth.generator import SynthOptions, write_part
from david_data.synth.host import Fault, LocalHost

MiB = 1 << 20


@pytest.mark.parametrize("compression", ["stored", "deflated"])
def test_check_while_downloading_names_the_flipped_member(tmp_path: Path, compression: str) -> None:
    """The fused pass (SHA-256, MD5, every CRC-32) runs as the bytes land, over several
    ranged connections, and still names the one broken member of either kind."""
    served = tmp_path / "served"
    served.mkdir()
    name = "SynthHuman_0000.zip"
    write_part(served / name, range(4), SynthOptions(compression=compression))  # type: ignore[arg-type]
    flip_byte(served / name, member_data_offset(served / name, "normal_0000002.exr") + 100)
    data = (served / name).read_bytes()
    options = FetchOptions(segments=3, segment_size=256 * 1024, min_split=64 * 1024, policy=FAST)
    with LocalHost(served, content_md5=True) as host:
        host.faults.add(Fault.rate_cap(4_000_000), times=None)  # the check waits for bytes
        target = tmp_path / "dest" / name
        info, check = fetch_file(
            host.url(name),
            target,
            client=HttpClient(),
            check=lambda reader, info: check_download(reader, info, part_paths(target)[0]),
            options=options,
        )
    assert part_paths(target)[0].read_bytes() == data
    assert check.sha256 == hashlib.sha256(data).hexdigest()
    assert (
        check.content_md5
        == info.content_md5
        == base64.b64encode(hashlib.md5(data).digest()).decode()
    )
    assert [p.member for p in check.problems] == ["normal_0000002.exr"]
    assert check.member_count == 20 and check.sample_ids == (0, 1, 2, 3)
    # A server MD5 that disagrees with the bytes is a problem of the whole file.
    wrong = replace(info, content_md5=base64.b64encode(b"\0" * 16).decode())
    with open(part_paths(target)[0], "rb") as handle:
        again = check_download(handle, wrong, part_paths(target)[0])  # type: ignore[arg-type]
    assert any(not p.member and "Content-MD5" in p.problem for p in again.problems)


@pytest.mark.parametrize("compression", ["stored", "deflated"])
def test_any_block_size_gives_the_same_verdict(
    monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """Headers and members split across read blocks anywhere are checked the same."""
    buffer = io.BytesIO()
    write_part(buffer, (0, 1), SynthOptions(compression=compression))  # type: ignore[arg-type]
    data = bytearray(buffer.getvalue())
    reference = zipcheck.check_zip(io.BytesIO(data), len(data))
    assert reference.ok and reference.sha256 == hashlib.sha256(data).hexdigest()
    at = data.index(b"cam_0000001.txt") + len("cam_0000001.txt") + 2  # in that member's data
    data[at] ^= 0xFF
    for block in (7, 30, 4096):
        monkeypatch.setattr(zipcheck, "_BLOCK", block)
        check = zipcheck.check_zip(io.BytesIO(bytes(data)), len(data))
        assert check.sha256 == hashlib.sha256(data).hexdigest() != reference.sha256
        assert [p.member for p in check.problems] == ["cam_0000001.txt"], (block, check.problems)


def _state(size: int, segments: int, segment_size: int) -> PartState:
    """A fresh resume state for a ``size``-byte part in ``segments`` planned segments."""
    return PartState(
        url="u",
        size=size,
        etag=None,
        last_modified=None,
        content_md5=None,
        segments=plan_segments(size, segments, segment_size),
    )


def test_schedule_tail_first_then_in_order_then_shares(tmp_path: Path) -> None:
    size = 110 * MiB + 123
    part, state_path = tmp_path / "f.part", tmp_path / "f.state"
    with open(part, "wb") as handle:
        handle.truncate(size)
    state = _state(size, 4, 16 * MiB)
    transfer = Transfer(
        part,
        state_path,
        state,
        connections=4,
        min_split=MiB,
        checkpoint_bytes=8 * MiB,
        checkpoint_seconds=60,
    )
    taken = []
    try:
        while (segment := transfer.take()) is not None:
            taken.append(segment)
            transfer.wrote(segment, segment.length)  # as if fetched at once
        # The central directory's end of the file comes first.
        assert taken[0].end == size - 1 and taken[0].length <= TAIL_BYTES + MiB
        rest = taken[1:]
        assert [s.start for s in rest] == sorted(s.start for s in rest)
        assert all(s.length >= MiB for s in taken)
        assert rest[-1].length < 16 * MiB  # the last shares shrink so connections end together
        covered = sorted((s.start, s.end) for s in state.segments)
        assert covered[0][0] == 0 and covered[-1][1] == size - 1
        assert all(a[1] + 1 == b[0] for a, b in zip(covered, covered[1:], strict=False))
        transfer.running = 0
        assert transfer.available(0) == size
        transfer.checkpoint()
        assert state.complete
    finally:
        transfer.close_file()


def test_reader_waits_only_for_written_bytes(tmp_path: Path) -> None:
    size = 3 * MiB
    part = tmp_path / "f.part"
    part.write_bytes(bytes(range(256)) * (size // 256))
    state = _state(size, 3, MiB)
    transfer = Transfer(
        part,
        tmp_path / "f.state",
        state,
        connections=3,
        min_split=MiB,
        checkpoint_bytes=MiB,
        checkpoint_seconds=60,
    )
    transfer.running = 1
    try:
        first, last = state.segments[0], state.segments[-1]
        transfer.wrote(last, last.length)
        transfer.wrote(first, 1000)
        assert transfer.available(0) == 1000 and transfer.available(last.start) == MiB
        with TransferReader(transfer, size) as reader:
            reader.seek(-10, 2)
            assert reader.read(10) == part.read_bytes()[-10:]
            reader.seek(0)
            assert reader.read(1000) == part.read_bytes()[:1000]
            transfer.running = 0  # every connection gone: a reader stops waiting
            with pytest.raises(Exception, match="stopped before byte"):
                reader.read(1)
    finally:
        transfer.close_file()
