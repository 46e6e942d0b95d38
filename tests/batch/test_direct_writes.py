"""The batch path writes its outputs around the page cache (O_DIRECT), byte for byte, and
writes them the ordinary way where a file system refuses O_DIRECT."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from david_data import direct_io
from david_data.direct_io import write_new_direct
from david_data.fsutil import resolve
from david_data.infer.outputs import _put

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="O_DIRECT as Linux has it"
)
SIZES = (0, 1, 4095, 4096, 4097, (1 << 20) + 3, 3_400_001)


def _cached_bytes(path: Path) -> int:
    """Bytes of ``path`` in the page cache, as util-linux's fincore counts them."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


def _on_tmpfs(path: Path) -> bool:
    """Whether ``path`` lies on tmpfs (whose files live in the page cache by design)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        mount, fstype = line.split()[1], line.split()[2]
        if str(path).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
            best, kind = mount, fstype
    return kind == "tmpfs"


@pytest.mark.parametrize("size", SIZES)
def test_a_direct_write_holds_exactly_the_bytes_and_leaves_none_in_the_page_cache(
    tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    path = tmp_path / "out.bin"
    assert write_new_direct(str(path), data)  # this machine's file systems take O_DIRECT
    assert path.stat().st_size == size
    if size and shutil.which("fincore") and not _on_tmpfs(tmp_path):
        assert _cached_bytes(path) == 0  # straight to the disk: no copy in the page cache
    assert path.read_bytes() == data


def test_a_direct_write_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        write_new_direct(str(path), b"ours")
    assert path.read_bytes() == b"theirs"


def test_where_a_file_system_refuses_o_direct_the_output_is_written_the_ordinary_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No file system here refuses O_DIRECT (tmpfs takes it on this kernel): refuse it as
    # Linux does for one that cannot, after creating the file.
    real_open = os.open
    refused: list[str] = []

    def refusing_open(path: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags & ~os.O_DIRECT, mode)
        if flags & os.O_DIRECT:
            os.close(fd)
            refused.append(path)
            raise OSError(errno.EINVAL, "Invalid argument")
        return fd

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(direct_io, "_refused", set())
    fs, root = resolve(str(tmp_path))
    data = os.urandom(10_000)
    for name in ("a.exr", "b.exr"):
        _put(fs, f"{root}/{name}", data, direct=True)
        assert (tmp_path / name).read_bytes() == data
    assert len(refused) == 1  # once per folder: then that folder is written the ordinary way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.exr", "b.exr"]  # no temp file


def _failing_write(code: int) -> object:
    def write(fd: int, data: object) -> int:
        raise OSError(code, os.strerror(code))

    return write


def test_a_write_the_device_refuses_leaves_nothing_and_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "write", _failing_write(errno.EINVAL))  # e.g. 8 KiB blocks
    assert not write_new_direct(str(tmp_path / "out.bin"), b"x" * 5000)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_an_error_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, root = resolve(str(tmp_path))
    monkeypatch.setattr(os, "write", _failing_write(errno.ENOSPC))
    with pytest.raises(OSError, match="No space"):
        _put(fs, f"{root}/c.exr", b"y" * 5000, direct=True)
    assert list(tmp_path.iterdir()) == []
