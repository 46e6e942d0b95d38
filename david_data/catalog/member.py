"""A member to fetch, as the catalog lists it, and its streaming check.

A :class:`MemberStream` is the project's one member reader
(:class:`david_data.zipformat.MemberReader`) keeping the content: fed the bytes of a
member's record in order, from its local header on, it checks the header against the
catalog (name, method, CRC-32, sizes), inflates deflated data (the stream must end
exactly at the compressed size), counts it and runs it through CRC-32.
:meth:`MemberStream.result` gives the member's content, or raises a
:class:`~david_data.errors.VerificationError` that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..zipformat import DEFLATED, STORED, MemberReader, MemberSpec

__all__ = ["DEFLATED", "STORED", "MemberStream", "MemberTask"]


@dataclass(frozen=True, kw_only=True)
class MemberTask:
    """One member to fetch, as the catalog lists it."""

    sample_id: int
    name: str
    """The member's name in the zip (maybe inside a folder)."""
    offset: int
    end_offset: int
    compressed_size: int
    size: int
    crc32: int
    method: int

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "sample_id",
        "member",
        "offset",
        "end_offset",
        "compressed_size",
        "size",
        "crc32",
        "method",
    )
    """The catalog columns :meth:`from_row` reads."""

    def spec(self) -> MemberSpec:
        """What its record must match, as the member reader takes it."""
        return MemberSpec(
            name=self.name,
            offset=self.offset,
            method=self.method,
            crc=self.crc32,
            compressed_size=self.compressed_size,
            size=self.size,
        )

    @property
    def file_name(self) -> str:
        """Its name in the extracted layout (``rgb_0000123.png``)."""
        return self.name.rsplit("/", 1)[-1]

    @classmethod
    def from_row(cls, columns: dict[str, list[Any]], i: int) -> MemberTask:
        """Row ``i`` of a catalog ``members`` table given as ``{column: values}``."""
        return cls(
            sample_id=columns["sample_id"][i],
            name=columns["member"][i],
            offset=columns["offset"][i],
            end_offset=columns["end_offset"][i],
            compressed_size=columns["compressed_size"][i],
            size=columns["size"][i],
            crc32=columns["crc32"][i],
            method=columns["method"][i],
        )


class MemberStream(MemberReader):
    """The streaming check of one catalogued member's record ``[offset, end_offset)``."""

    def __init__(self, task: MemberTask) -> None:
        super().__init__(task.spec(), end=task.end_offset, keep=True)
        self.task = task

    def result(self) -> bytes:
        """The member's verified content; raises :class:`VerificationError` otherwise."""
        return self.content()
