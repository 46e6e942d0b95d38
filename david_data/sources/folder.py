"""An extracted folder as one part: each member is a loose file, in any sub-folder, read whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fsspec import AbstractFileSystem

from .. import facts
from ..errors import SampleDecodeError
from .base import PartSource
from .parts import Member, PartRef, RawFiles, SampleMembers, part_fs


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


@dataclass(kw_only=True)
class FolderPart(PartSource):
    """An extracted ``SynthHuman/`` folder standing for all its loose files."""

    kind: ClassVar[str] = "folder"
    is_zip: ClassVar[bool] = False
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)
    """Sizes of the loose files by path."""

    def _entries(self) -> Iterable[tuple[str, Member]]:
        assert self.fs is not None
        found = self.fs.find(self.path, detail=True)
        self._sizes = {p: int(info.get("size") or 0) for p, info in found.items()}
        return ((p, p) for p in sorted(found))

    def _size_of(self, path: str) -> int | None:
        return self._sizes.get(path)

    def content_key(self, sample_id: int) -> tuple[tuple[str, int, int], ...] | None:
        """None: a loose file's content is only known by reading it."""
        return None

    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        located = self.locate(sample_ids)
        yield from read_folder(self.ref(), located, fs=self.fs)

    def sha256(self) -> str | None:
        """None: a folder has no checksum of its own."""
        return None
