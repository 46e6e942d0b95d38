"""Convert straight from the data host: parts known from the catalog, members read by
verified ranged requests, with no local copy of a zip.

:func:`open_remote_source` makes a :class:`~david_data.sources.base.Source` whose parts
are :class:`RemotePart`: loading one loads its catalog (a HEAD, and the central directory
by one or two ranged reads unless the user cache holds this version, see
:mod:`david_data.catalog.catalog`), so a plan knows every member's offset, sizes and CRC-32 as it does for
a mirrored zip. A work unit reads its shard's members with :func:`read_remote`:
neighbouring members coalesced into one request (:func:`david_data.catalog.reader.coalesce`), every request
closed, carrying ``If-Match`` with the part's ETag and retried from the first byte not
received, every member checked against the central directory (local header, size,
CRC-32) as it streams (:func:`david_data.catalog.reader.read_members`).

What a failure does to the shard being written:

- the part changed on the host (412, new ETag or size): :class:`RemoteChangedError`, the
  shard is not committed and is named in the report; the next run sees the new version
  (a HEAD), reads its catalog again and converts again every shard taken from the old one;
- a server that ignores ranges: :class:`RangeNotSupportedError`, naming the server;
- a request that keeps failing: :class:`DownloadError`; the shard is redone by the next run;
- a member that does not verify after three reads: the part's central directory is read
  again (confirmed, :func:`david_data.catalog.directory.read_part`); when the new reading lists the member
  otherwise, the member is read by it (and the reading replaces the cached one), else it
  is that sample's error (as a damaged member of a mirrored zip is).

A part's entries whose names are not sample files are logged as warnings when its
catalog is loaded; samples listed without all five files become errors naming the
missing file (:func:`david_data.convert.decode.decode_sample`).

Part identity: a store records with each sample the ``part_sha256`` of its part. Hashing a
part on the host would mean downloading all of it, so a part read from the host is
identified by its version there, ``etag:<ETag>`` (``size:<bytes>`` from a host that sends
no ETag): a part replaced on the host gets a new ETag, and its shards are converted again.
A store converted from the host thus equals one converted from a mirror of the same parts
in every array and every metadata value but ``part_sha256``, and moving a store from one
source to the other converts its shards again (the two identities cannot be compared).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fsspec import AbstractFileSystem

from .. import facts
from ..catalog.cache import store_cached
from ..catalog.catalog import CatalogSource, load_part
from ..catalog.directory import PartCatalog, read_part
from ..catalog.member import MemberStream, MemberTask
from ..catalog.reader import coalesce, read_members
from ..catalog.remote import PartVersion, Stopped, read_range, server_of
from ..errors import DavidDataError, RemoteChangedError, SampleDecodeError, VerificationError
from ..net.retry import RetryPolicy
from .base import PartSource, Source
from .parts import Member, PartRef, RawFiles, SampleMembers
from .zip import ZipPart

logger = logging.getLogger(__name__)

MAX_GAP = 128 << 10
"""Members of a shard closer than this are read in one request (the gap is downloaded)."""
MAX_REQUEST = 32 << 20
"""Most bytes one request asks for (a longer run of members takes several)."""


def part_identity(version: PartVersion) -> str:
    """What a store records as ``part_sha256`` for a part read from a host."""
    return f"etag:{version.version}" if version.version else f"size:{version.size}"


@dataclass(kw_only=True)
class RemotePart(ZipPart):
    """A part zip on an HTTP host; its members come from its catalog."""

    kind: ClassVar[str] = "http"
    catalog_source: CatalogSource = field(repr=False)
    policy: RetryPolicy = field(default_factory=RetryPolicy, repr=False)
    catalog: PartCatalog | None = field(default=None, repr=False)
    """Set once loaded."""

    def _entries(self) -> Iterable[tuple[str, Member]]:
        part = load_part(self.catalog_source, self.name, policy=self.policy)
        self.catalog = part
        self.size = part.version.size
        self.recorded_sha256 = part_identity(part.version)
        if part.version.version is None:
            logger.warning(
                "%s sends no ETag for %s: a part replaced there at the same size is not noticed",
                server_of(self.url),
                self.name,
            )
        for entry in part.unparsed:
            logger.warning(
                "%s: entry %r is not a SynthHuman sample file (its name does not parse); "
                "it is not converted",
                self.name,
                entry,
            )
        return ((task.name, task) for task in tasks_of(part))

    def ref(self, sha256: str | None = None) -> PartRef:
        version = self.catalog.version.version if self.catalog is not None else None
        return PartRef(
            name=self.name,
            url=self.url,
            kind=self.kind,
            size=self.size,
            sha256=sha256,
            version=version,
            policy=self.policy,
        )

    def read_samples(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, RawFiles]]:
        located = self.locate(sample_ids)  # first: the part learns its size and ETag
        yield from read_remote(self.ref(), located)

    def sha256(self) -> str | None:
        self._index()
        return self.recorded_sha256

    def fingerprint(self) -> str:
        self._index()
        return f"{self.size}:{self.recorded_sha256}"


def tasks_of(part: PartCatalog) -> list[MemberTask]:
    """Every catalogued member of a part, as the reader takes them."""
    return part.tasks()


def open_remote_source(url: str, *, policy: RetryPolicy | None = None) -> Source:
    """The parts under an HTTP base URL (all 60 numbered parts and the sample part; none
    is contacted until loaded), or the one part an URL ending in its zip name points at."""
    policy = policy or RetryPolicy()
    path = urllib.parse.urlsplit(url).path
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if facts.is_part_name(last) and not path.endswith("/"):
        base, names, kind = url[: url.rstrip("/").rfind("/") + 1], [last], "zip"
    else:
        base, names, kind = (
            url.rstrip("/") + "/",
            [*facts.all_part_names(), facts.SAMPLE_PART],
            "http",
        )
    source = CatalogSource(base=base)
    parts: list[PartSource] = [
        RemotePart(
            name=name,
            url=source.part_url(name),
            path=source.part_url(name),
            catalog_source=source,
            policy=policy,
        )
        for name in names
    ]
    return Source(url=base if kind == "http" else url, parts=parts, kind=kind)


def read_remote(
    part: PartRef,
    samples: Sequence[SampleMembers],
    *,
    fs: AbstractFileSystem | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[int, RawFiles]]:
    """Yield ``(sample_id, files)`` for located samples of a part on an HTTP host, in the
    given order, once all their members are read (see the module docstring). ``fs`` and
    ``storage_options`` are not used: a host is read by the catalog's client."""
    version = PartVersion(size=part.size, version=part.version)
    policy = part.policy or RetryPolicy()
    got: dict[int, RawFiles] = {s.sample_id: dict.fromkeys(facts.FILE_KINDS) for s in samples}
    where: dict[str, tuple[int, str]] = {}
    tasks: list[MemberTask] = []
    for sample in samples:
        for kind, member in sample.members:
            if not isinstance(member, MemberTask):
                raise TypeError(f"{part.url}: {member!r} is not a catalogued member")
            where[member.name] = (sample.sample_id, kind)
            tasks.append(member)

    def keep(task: MemberTask, data: bytes | SampleDecodeError) -> None:
        sid, kind = where[task.name]
        got[sid][kind] = data

    outcome = read_members(
        part.url, version, coalesce(tasks, MAX_GAP, MAX_REQUEST), on_member=keep, policy=policy
    )
    if outcome.changed:
        raise RemoteChangedError(
            f"{part.name} changed on {server_of(part.url)} while this shard was read (it is no "
            f"longer version {part.version or part.size}); nothing read from it was kept: rerun "
            "to convert the new version",
            url=part.url,
        )
    if outcome.stopped:  # the unit stops before it looks at these (stop_requested is set)
        for task in tasks:
            sid, kind = where[task.name]
            if got[sid][kind] is None:
                keep(task, SampleDecodeError(f"{task.name}: not read (stopped)", path=task.name))
    else:
        reading: list[dict[str, MemberTask]] = []  # the directory read again, once
        for task, _ in outcome.failed:
            data = _read_alone(part.url, version, task, policy)
            if isinstance(data, SampleDecodeError):
                data = _by_new_reading(part, version, task, policy, reading) or data
            keep(task, data)
    for sample in samples:
        yield sample.sample_id, got[sample.sample_id]


def _by_new_reading(
    part: PartRef,
    version: PartVersion,
    task: MemberTask,
    policy: RetryPolicy,
    reading: list[dict[str, MemberTask]],
) -> bytes | SampleDecodeError | None:
    """The member read by a new reading of the part's directory (made once per call,
    kept in ``reading``, cached), or None when that reading lists it as before."""
    if not reading:
        try:
            fresh = read_part(part.name, part.url, version, policy=policy)
        except DavidDataError as exc:
            logger.warning("cannot read the directory of %s again: %s", part.name, exc)
            return None
        reading.append({t.name: t for t in tasks_of(fresh)})
        store_cached(part.url.rsplit("/", 1)[0] + "/", fresh)
    listed = reading[0].get(task.name)
    if listed == task:
        return None
    logger.warning(
        "%s: the central directory read again lists %s otherwise than the one used; "
        "reading it by the new listing",
        part.name,
        task.name,
    )
    if listed is None:
        return SampleDecodeError(
            f"{task.name}: {part.name} no longer lists this member", path=task.name
        )
    return _read_alone(part.url, version, listed, policy)


def _read_alone(
    url: str, version: PartVersion, task: MemberTask, policy: RetryPolicy
) -> bytes | SampleDecodeError:
    """One more read of a member that failed: bytes that still do not verify are the
    sample's error; a request that still fails raises (the shard is redone next run)."""
    stream = MemberStream(task)

    def feed(data: memoryview) -> None:
        if not stream.done:
            stream.feed(data)

    try:
        read_range(url, task.offset, task.end_offset - 1, feed, expect=version, policy=policy)
    except Stopped:
        return SampleDecodeError(f"{task.name}: not read (stopped)", path=task.name)
    try:
        return stream.result()
    except VerificationError as exc:
        return SampleDecodeError(
            f"{url}:{exc.message}; the member on the host does not match its zip directory",
            path=task.name,
        )
