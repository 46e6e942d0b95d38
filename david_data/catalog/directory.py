"""One part's catalog: its zip central directory read with a few ranged reads, as plain
columns (an Arrow table made from them on first use: a fetch by ids loads no pyarrow).

Over HTTP a part costs a HEAD, then two rounds of ranged GETs: the last KiB (the end
records; more when a long zip comment hides them), then the central directory. The bytes
are parsed by the project's one zip parser (:func:`david_data.zipformat.read_layout`, as
the mirror's), so both agree on every zip.

A reading is confirmed by a second, independent read: over HTTP every range is requested
twice at once, on two connections, and the two replies compared byte for byte (the
confirmation costs no round trip of its own); elsewhere (a mirror folder) everything from
the start of the central directory to the end of the file is read again after the first
reading. A reading that does not parse or that two reads contradict (a bit flipped in
flight) is thrown away and the part read afresh, up to :data:`READINGS` times; only a
confirmed reading becomes a :class:`PartCatalog` (and so reaches the cache).

Entries whose name is not a sample file (and is not a folder) are kept by name in
:attr:`PartCatalog.unparsed`: they are reported, never dropped silently.

Columns, one row per sample member (other entries are left out):
``sample_id``, ``part``, ``member`` (its name in the zip), ``kind`` (rgb, alpha, depth,
normal, cam), ``offset`` (of the local header), ``end_offset`` (the next record's offset,
or the central directory's: the member's local header, data and any data descriptor
lie in ``[offset, end_offset)``), ``compressed_size``, ``size``, ``crc32``, ``method``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import facts
from ..errors import VerificationError, ZipFormatError
from ..fsutil import resolve
from ..net.http import is_http
from ..net.retry import RetryPolicy
from ..zipformat import ZipEntry, ZipLayout, read_layout, record_end
from .member import MemberTask
from .remote import PartVersion, read_range

if TYPE_CHECKING:  # pyarrow loads only where a table is made (SQL, the Parquet cache)
    import pyarrow as pa

    SCHEMA: pa.Schema

logger = logging.getLogger(__name__)

COLUMNS: dict[str, str] = {
    "sample_id": "int64",
    "part": "string",
    "member": "string",
    "kind": "string",
    "offset": "int64",
    "end_offset": "int64",
    "compressed_size": "int64",
    "size": "int64",
    "crc32": "int64",
    "method": "int16",
}
"""The table's columns and their Arrow types (:data:`SCHEMA`)."""


@functools.cache
def schema() -> pa.Schema:
    """The Arrow schema of a part's table (imports pyarrow)."""
    import pyarrow as pa

    return pa.schema([(name, pa.type_for_alias(kind)) for name, kind in COLUMNS.items()])


def __getattr__(name: str) -> Any:
    if name == "SCHEMA":  # made on first use: importing this module loads no pyarrow
        return schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


READINGS = 3
"""Readings of a directory tried before giving up on a part that never reads the same twice."""


class PartCatalog:
    """The members of one version of one part: as plain columns (``{name: list}``, what a
    reading of the directory gives and a fetch uses) or as an Arrow table (what SQL and
    the Parquet cache use); each is made from the other on first use. Treat it as
    frozen."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        version: PartVersion,
        table: pa.Table | None = None,
        columns: dict[str, list[Any]] | None = None,
        requests: int = 0,
        unparsed: tuple[str, ...] = (),
    ) -> None:
        if (table is None) == (columns is None):
            raise TypeError("PartCatalog takes a table or columns (one of them)")
        self.name = name
        self.url = url
        self.version = version
        self.requests = requests
        """Ranged reads it took (0 when it came from the cache)."""
        self.unparsed = unparsed
        """Entries that are neither a sample file (``rgb_0000123.png`` ...) nor a folder."""
        self._table = table
        self._columns: dict[str, list[Any]] = dict(columns or {})

    def __repr__(self) -> str:
        return f"PartCatalog(name={self.name!r}, version={self.version!r}, rows={self.num_rows})"

    @property
    def table(self) -> pa.Table:
        """The members as an Arrow table with :data:`SCHEMA` (made on first use)."""
        if self._table is None:
            import pyarrow as pa

            self._table = pa.table({n: self._columns[n] for n in COLUMNS}, schema=schema())
        return self._table

    def column(self, name: str) -> list[Any]:
        """One column as a Python list (taken from the table on first use)."""
        values = self._columns.get(name)
        if values is None:
            assert self._table is not None
            values = self._columns[name] = self._table.column(name).to_pylist()
        return values

    @property
    def num_rows(self) -> int:
        return len(self._columns["sample_id"]) if self._table is None else self._table.num_rows

    def same_members(self, other: PartCatalog) -> bool:
        """True when both list the same members, every column equal."""
        return self.num_rows == other.num_rows and all(
            self.column(n) == other.column(n) for n in COLUMNS
        )

    def members_of(self, sample_ids: list[int]) -> dict[int, list[MemberTask]]:
        """The members of these samples, by sample (in offset order)."""
        wanted = set(sample_ids)
        rows = [i for i, sid in enumerate(self.column("sample_id")) if sid in wanted]
        out: dict[int, list[MemberTask]] = {}
        if not rows:
            return out
        columns = {name: self.column(name) for name in MemberTask.COLUMNS}
        for i in rows:
            out.setdefault(columns["sample_id"][i], []).append(MemberTask.from_row(columns, i))
        return out

    def tasks(self) -> list[MemberTask]:
        """Every member, as the reader takes them."""
        columns = {name: self.column(name) for name in MemberTask.COLUMNS}
        return [MemberTask.from_row(columns, i) for i in range(self.num_rows)]

    def incomplete(self) -> list[tuple[int, list[str]]]:
        """``(sample_id, file names it lacks)`` of each sample listed without all five
        files, by id."""
        kinds: dict[int, set[str]] = {}
        for sid, kind in zip(self.column("sample_id"), self.column("kind"), strict=True):
            kinds.setdefault(sid, set()).add(kind)
        return [
            (sid, [facts.member_name(k, sid) for k in facts.FILE_KINDS if k not in have])
            for sid, have in sorted(kinds.items())
            if len(have) < len(facts.FILE_KINDS)
        ]

    def problems(self) -> list[str]:
        """One line per incomplete sample."""
        return [
            f"{self.name}: sample {sid} is incomplete: it lacks {', '.join(names)}"
            for sid, names in self.incomplete()
        ]

    def strays(self) -> list[str]:
        """One line per entry that is not a sample file. A sample whose file name was
        damaged also lacks that file, so it is among :meth:`problems` too; an extra file
        (a README, say) harms no sample: it is reported, not counted as a failure."""
        return [
            f"{self.name}: entry {name!r} is not a SynthHuman sample file (its name does not "
            "parse); it is left out of the catalog"
            for name in self.unparsed
        ]


class _TailReader:
    """A read-only file over a remote part: one span ending at the end of the file,
    grown backwards on demand. Each growth is requested twice at once, on two
    connections, and the replies compared: a difference is a :class:`VerificationError`."""

    def __init__(self, url: str, version: PartVersion, policy: RetryPolicy) -> None:
        self.url, self.version, self.policy = url, version, policy
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
            self.data = self._read_twice(self.pos, self.start - 1) + self.data
            self.start = self.pos
        out = self.data[self.pos - self.start : end - self.start]
        self.pos += len(out)
        return out

    def _read(self, start: int, end: int) -> bytes:
        got = bytearray()
        read_range(self.url, start, end, got.extend, expect=self.version, policy=self.policy)
        return bytes(got)

    def _read_twice(self, start: int, end: int) -> bytes:
        second = _pool().submit(self._read, start, end)
        self.requests += 2
        try:
            first = self._read(start, end)
        finally:
            again = second.result()  # never left running: it may hold a pooled connection
        _compare(self.url, start, first, again)
        return first


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    """A forked child has none of the parent's threads: it starts a pool of its own."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    """Threads for the second reads (each keeps its own keep-alive connection)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="catalog-confirm")
        return _POOL


def _compare(url: str, start: int, first: bytes | bytearray, again: bytes | bytearray) -> None:
    if first == again:
        return
    at = next(
        (i for i, (a, b) in enumerate(zip(again, first, strict=False)) if a != b),
        min(len(again), len(first)),
    )
    raise VerificationError(
        f"{url}: the central directory differs between two reads (first at byte "
        f"{start + at}); rerun, or check the network path to the server",
        path=url,
    )


def read_part(
    name: str,
    url: str,
    version: PartVersion,
    *,
    policy: RetryPolicy,
    storage_options: dict[str, Any] | None = None,
) -> PartCatalog:
    """Read the central directory of ``url`` (of the given version) into a catalog,
    confirmed by a second read (see the module docstring)."""
    requests = 0
    problem: VerificationError | None = None
    for _ in range(READINGS):
        try:
            layout, used = _read_layout(url, version, policy, storage_options)
        except VerificationError as exc:  # maybe a flipped byte: read it afresh
            problem = exc
            logger.info("%s; reading it again", exc.message)
            continue
        requests += used
        columns, unparsed = _columns(name, list(layout.entries), layout.cd_offset, version.size)
        return PartCatalog(
            name=name,
            url=url,
            version=version,
            columns=columns,
            requests=requests,
            unparsed=tuple(unparsed),
        )
    assert problem is not None
    raise problem


def _read_layout(
    url: str, version: PartVersion, policy: RetryPolicy, storage_options: dict[str, Any] | None
) -> tuple[ZipLayout, int]:
    """One confirmed reading of the directory, and the ranged reads it took."""
    if is_http(url):
        handle = _TailReader(url, version, policy)
        return _parse(handle, version.size, url), handle.requests
    fs, path = resolve(url, storage_options)
    with fs.open(path, "rb", block_size=1 << 20) as opened:
        layout = _parse(opened, version.size, url)
    again = bytearray()
    read_range(
        url,
        layout.cd_offset,
        version.size - 1,
        again.extend,
        expect=version,
        policy=policy,
        storage_options=storage_options,
    )
    _compare(url, layout.cd_offset, layout.tail, again)
    return layout, 0


def _parse(handle: Any, size: int, url: str) -> ZipLayout:
    try:
        return read_layout(handle, size)
    except ZipFormatError as exc:
        raise VerificationError(
            f"{url}: cannot read the zip's central directory ({exc}); the part is damaged "
            "or not a zip: check the URL, or mirror and verify it ('david-data mirror')",
            path=url,
        ) from exc


def _columns(
    part: str, entries: list[ZipEntry], cd_offset: int, size: int
) -> tuple[dict[str, list[Any]], list[str]]:
    """The rows, and the names of entries that are not sample files; ``cd_offset``
    (where the central directory starts) bounds the last member's record."""
    ordered = sorted(entries, key=lambda e: e.offset)
    if not ordered or cd_offset <= ordered[-1].offset:
        cd_offset = size
    rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    unparsed: list[str] = []
    for i, entry in enumerate(ordered):
        if entry.is_dir:
            continue
        ref = facts.parse_member_name(entry.name)
        if ref is None:
            unparsed.append(entry.name)
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
    return rows, unparsed
