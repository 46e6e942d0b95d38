"""The reader of an extracted folder: each member is a loose file, read whole."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import SampleDecodeError
from .parts import PartRef, RawFiles, SampleMembers, part_fs


def read_folder(
    part: PartRef,
    samples: Sequence[SampleMembers],
    *,
    fs: AbstractFileSystem | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[int, RawFiles]]:
    """Yield ``(sample_id, files)`` for located samples of an extracted folder, in the
    given order; a file that cannot be read yields its error instead of bytes."""
    fs, _ = part_fs(part, fs, storage_options)
    for sample in samples:
        files: RawFiles = dict.fromkeys(facts.FILE_KINDS)
        for kind, p in sample.members:
            try:
                files[kind] = fs.cat_file(str(p))
            except OSError as exc:
                files[kind] = SampleDecodeError(f"{p}: cannot read ({exc})", path=p)
        yield sample.sample_id, files
