"""Unpack a verified part into ``DEST/SynthHuman/`` (the official extracted layout).

Streaming (one member at a time, in chunks, each through the zip layer's member check:
:class:`david_data.zipformat.MemberReader`), atomic per file (temp + rename locally, one
PUT or a staged key on object stores), resumable (a file already there with the right
size is kept: it can only be there complete), and every name is checked before use.
The official layout is flat (``DEST/SynthHuman/rgb_0000000.png``): when every member of
a zip sits in one top-level folder (``SynthHuman/rgb_0000000.png``), that folder is
dropped instead of giving ``DEST/SynthHuman/SynthHuman/``; other paths are kept as they
are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from .. import facts
from ..engine.signals import stop_requested
from ..errors import JobInterrupted, VerificationError, ZipFormatError
from ..fsutil import Files, atomic_open, atomic_write_bytes, is_local, join
from ..zipformat import MemberReader, ZipEntry, read_layout, record_ends
from .memberset import check_member_name

if TYPE_CHECKING:  # fsspec loads only where a filesystem is made (never for a local DEST)
    from fsspec import AbstractFileSystem

logger = logging.getLogger(__name__)

_SMALL = 64 << 20
_CHUNK = 1 << 20


def extract_folder(dest: str) -> str:
    return join(dest, facts.EXTRACT_FOLDER)


def extract_zip(handle: IO[bytes], part: str, fs: Files | AbstractFileSystem, dest: str) -> int:
    """Extract the zip open in ``handle`` into ``DEST/SynthHuman/``; returns files written.

    Raises :class:`~david_data.errors.UnsafeMemberError` for a dangerous name (before
    writing anything) and :class:`VerificationError` for a member whose CRC fails.
    """
    folder = extract_folder(dest)
    size = handle.seek(0, os.SEEK_END)
    try:
        layout = read_layout(handle, size)
    except ZipFormatError as exc:
        raise VerificationError(
            f"{part}: unreadable zip ({exc}); run 'david-data verify' and re-mirror the part",
            part=part,
        ) from exc
    for entry in layout.entries:
        check_member_name(entry.name)
    members = [(e, end) for e, end in record_ends(layout) if not e.is_dir]
    strip = _common_folder([e.name for e, _ in members])
    present = {} if is_local(fs) else _existing_sizes(fs, folder)
    written = 0
    for entry, end in members:
        if stop_requested():
            raise JobInterrupted(f"{part}: extraction stopped on request; the next run resumes it")
        relative = entry.name[len(strip) :]
        target = join(folder, relative)
        have = _local_size(target) if is_local(fs) else present.get(relative)
        if have == entry.size:
            continue
        if is_local(fs) or entry.size > _SMALL:
            with atomic_open(fs, target) as out:  # removed unless the member verifies
                _read_member(handle, entry, end, part, out.write)
        else:
            atomic_write_bytes(fs, target, _read_member(handle, entry, end, part, None))
        written += 1
    logger.info(
        "%s: extracted %d files (%d already there) into %s",
        part,
        written,
        len(members) - written,
        folder,
    )
    return written


def _read_member(
    handle: IO[bytes],
    entry: ZipEntry,
    end: int,
    part: str,
    sink: Callable[[bytes | memoryview], object] | None,
) -> bytes:
    """Stream one member's record through the zip layer's check, its content to
    ``sink`` (or kept and returned); raises :class:`VerificationError` naming it."""
    reader = MemberReader(entry, end=end, keep=sink is None, sink=sink)
    handle.seek(entry.offset)
    while not reader.done and (block := handle.read(min(_CHUNK, end - reader.pos))):
        reader.feed(memoryview(block))
    try:
        reader.check()
    except VerificationError as exc:
        raise VerificationError(
            f"{part}: member {exc.message}; run 'david-data verify' and re-mirror the part",
            part=part,
            member=entry.name,
        ) from exc
    return b"" if sink is not None else reader.content()


def _common_folder(names: list[str]) -> str:
    """``"top/"`` when every name sits in the one top-level folder ``top``, else ``""``."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop() + "/"
    return ""


def _local_size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _existing_sizes(fs: AbstractFileSystem, folder: str) -> dict[str, int]:
    try:
        entries = fs.find(folder, detail=True)
    except FileNotFoundError:
        return {}
    prefix = folder.rstrip("/") + "/"
    return {
        name[len(prefix) :]: int(e.get("size") or 0)
        for name, e in entries.items()
        if e.get("type") == "file" and name.startswith(prefix)
    }
