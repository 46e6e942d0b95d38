"""What a source's readers exchange: plain, picklable descriptions of parts and samples.

A client opens a source once (:func:`david_data.sources.open_source`); what travels to a
worker is a :class:`PartRef` (its ``kind`` names the reader) and the :class:`SampleMembers`
located in it, never the source object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from fsspec import AbstractFileSystem

from ..errors import SampleDecodeError
from ..fsutil import resolve
from ..zipformat import ZipEntry

if TYPE_CHECKING:
    from ..catalog.member import MemberTask
    from ..net.retry import RetryPolicy


@dataclass(frozen=True, kw_only=True)
class ZipMember(ZipEntry):
    """One entry of a zip's central directory, with the end of its record."""

    end_offset: int
    """Its local header, data and any data descriptor lie in ``[offset, end_offset)``."""


RawFiles = dict[str, "bytes | SampleDecodeError | None"]
"""One sample's files by kind (``rgb``, ``alpha``, ``depth``, ``normal``, ``cam``):
bytes, the error met reading them, or None when the member is missing."""

Member: TypeAlias = "ZipMember | MemberTask | str"
"""Where one file of a sample is: a zip directory entry, a catalogued member of a part on
an HTTP host, or a loose file's path."""


@dataclass(frozen=True, kw_only=True)
class PartRef:
    """Enough to read a part in another process or on another machine (absolute URL)."""

    name: str
    url: str
    kind: str
    """Which reader reads it: ``zip``, ``folder`` (loose files) or ``http`` (a part on a
    data host), decided once, when its source was opened."""
    size: int
    sha256: str | None = None
    """The part's identity recorded in each row's ``part_sha256``: its SHA-256, or for a
    part read from an HTTP host its version there (see :mod:`david_data.sources.http`)."""
    version: str | None = None
    """ETag of a part on an HTTP host: every ranged read carries it in ``If-Match``."""
    policy: RetryPolicy | None = None
    """Retries of ranged reads from an HTTP host (None: the default policy)."""


@dataclass(frozen=True, kw_only=True)
class SampleMembers:
    """Where one sample's files are inside its part, by kind."""

    sample_id: int
    members: tuple[tuple[str, Member], ...]


def part_fs(
    part: PartRef, fs: AbstractFileSystem | None, storage_options: dict[str, Any] | None
) -> tuple[AbstractFileSystem, str]:
    """The file system and path of a local or fsspec part (``fs`` when the caller has one)."""
    if fs is None:
        return resolve(part.url, storage_options)
    return fs, fs._strip_protocol(part.url)
