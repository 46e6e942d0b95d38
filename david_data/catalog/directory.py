"""One part's catalog: its zip central directory read with a few ranged reads, as a table.

Over HTTP a part costs a HEAD and, for a central directory that fits in the last 64 KiB,
one GET; otherwise one more GET for the rest of it (and the ZIP64 records, when they lie
outside the tail). The bytes are parsed by the project's one zip parser
(:func:`david_data.zipformat.read_layout`, as the mirror's), so both agree on every zip.

Table columns, one row per sample member (other entries are left out):
``sample_id``, ``part``, ``member`` (its name in the zip), ``kind`` (rgb, alpha, depth,
normal, cam), ``offset`` (of the local header), ``end_offset`` (the next record's offset,
or the central directory's: the member's local header, data and any data descriptor
lie in ``[offset, end_offset)``), ``compressed_size``, ``size``, ``crc32``, ``method``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .. import facts
from ..errors import VerificationError, ZipFormatError
from ..fsutil import resolve
from ..mirror.retry import RetryPolicy
from ..zipformat import END_SEARCH_BYTES, ZipEntry, ZipLayout, read_layout, record_end
from .remote import PartVersion, is_http, read_range

SCHEMA = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("part", pa.string()),
        ("member", pa.string()),
        ("kind", pa.string()),
        ("offset", pa.int64()),
        ("end_offset", pa.int64()),
        ("compressed_size", pa.int64()),
        ("size", pa.int64()),
        ("crc32", pa.int64()),
        ("method", pa.int16()),
    ]
)

_TAIL = END_SEARCH_BYTES
"""What the zip parser reads first: the largest end record plus the ZIP64 locator."""


@dataclass(frozen=True, kw_only=True)
class PartCatalog:
    """The members of one version of one part."""

    name: str
    url: str
    version: PartVersion
    table: pa.Table
    requests: int = 0
    """Ranged reads it took (0 when it came from the cache)."""


class _TailReader:
    """A read-only file over a remote part: one span ending at the end of the file,
    grown backwards on demand with one closed ranged read each time."""

    def __init__(
        self,
        url: str,
        version: PartVersion,
        policy: RetryPolicy,
        storage_options: dict[str, Any] | None,
    ) -> None:
        self.url, self.version, self.policy = url, version, policy
        self.storage_options = storage_options
        self.size = version.size
        self.start = self.size
        self.data = b""
        self.pos = 0
        self.requests = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = (
            offset if whence == 0 else (self.size + offset if whence == 2 else self.pos + offset)
        )
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n < 0 else min(self.size, self.pos + n)
        if self.pos < self.start:
            missing = bytearray()
            self.requests += 1
            read_range(
                self.url,
                self.pos,
                self.start - 1,
                missing.extend,
                expect=self.version,
                policy=self.policy,
                storage_options=self.storage_options,
            )
            self.data = bytes(missing) + self.data
            self.start = self.pos
        out = self.data[self.pos - self.start : end - self.start]
        self.pos += len(out)
        return out


def read_part(
    name: str,
    url: str,
    version: PartVersion,
    *,
    policy: RetryPolicy,
    storage_options: dict[str, Any] | None = None,
) -> PartCatalog:
    """Read the central directory of ``url`` (of the given version) into a catalog."""
    if is_http(url):
        handle = _TailReader(url, version, policy, storage_options)
        handle.seek(max(0, version.size - _TAIL))
        handle.read(_TAIL)  # the tail in one request; the reader finds it cached
        layout = _parse(handle, version.size, url)
        requests = handle.requests
    else:
        fs, path = resolve(url, storage_options)
        with fs.open(path, "rb", block_size=1 << 20) as opened:
            layout = _parse(opened, version.size, url)
        requests = 0
    table = _table(name, list(layout.entries), layout.cd_offset, version.size)
    return PartCatalog(name=name, url=url, version=version, table=table, requests=requests)


def _parse(handle: Any, size: int, url: str) -> ZipLayout:
    try:
        return read_layout(handle, size)
    except ZipFormatError as exc:
        raise VerificationError(
            f"{url}: cannot read the zip's central directory ({exc}); the part is damaged "
            "or not a zip: check the URL, or mirror and verify it ('david-data mirror')",
            path=url,
        ) from exc


def _table(part: str, entries: list[ZipEntry], cd_offset: int, size: int) -> pa.Table:
    """The rows; ``cd_offset`` (where the central directory starts) bounds the last
    member's record."""
    ordered = sorted(entries, key=lambda e: e.offset)
    if not ordered or cd_offset <= ordered[-1].offset:
        cd_offset = size
    rows: dict[str, list[Any]] = {field.name: [] for field in SCHEMA}
    for i, entry in enumerate(ordered):
        ref = facts.parse_member_name(entry.name)
        if ref is None or entry.is_dir:
            continue
        following = ordered[i + 1].offset if i + 1 < len(ordered) else cd_offset
        for key, value in (
            ("sample_id", ref.sample_id),
            ("part", part),
            ("member", entry.name),
            ("kind", ref.kind),
            ("offset", entry.offset),
            # Never more than a record can hold: stray bytes after it are not fetched.
            ("end_offset", min(record_end(entry, following), size)),
            ("compressed_size", entry.compressed_size),
            ("size", entry.size),
            ("crc32", entry.crc),
            ("method", entry.method),
        ):
            rows[key].append(value)
    return pa.table(rows, schema=SCHEMA)
