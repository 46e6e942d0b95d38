"""Mirror one part: fetch (resuming), verify, repair, promote, record, optionally extract.

This is the mirror's work unit (:func:`mirror_part`): it takes one part of the plan
and returns a :class:`PartOutcome`, never raising for a part-level failure.

Each step is safe to interrupt: the part takes its final name only after it passed
every check (see :mod:`.zipcheck`: no byte unchecked), and enters the manifest only
after that. A check that names damaged byte ranges has those ranges fetched again and
the part re-checked (a byte flipped in flight); when the server sends the same bytes
again, its copy is corrupt and the part fails by name. A whole-file problem (size,
Content-MD5) fetches the part again once; a second copy with the same SHA-256 also
means the server's copy is corrupt. A stop request (Ctrl-C, SIGTERM) checkpoints the
download and returns an ``interrupted`` outcome.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from .._sizes import human_bytes
from ..engine.signals import stop_requested
from ..errors import DavidDataError, JobInterrupted, VerificationError
from ..fsutil import Files, is_local, join, open_folder
from ..net.http import HttpClient, RemoteInfo
from ..net.retry import RetryPolicy
from .extract import extract_zip
from .manifest import PartRecord, compact_ranges, load_manifest, now_iso, record_parts
from .plan import MirrorSettings, PartPlan
from .promote import promote, scratch_dir_for
from .segmented import (
    FetchOptions,
    FetchStats,
    fetch_file,
    fetch_range,
    part_paths,
    remove_partial,
)
from .zipcheck import Problem, ZipCheck, check_zip

logger = logging.getLogger(__name__)

_FETCH_ATTEMPTS = 2
_REPAIR_ROUNDS = 3
_MAX_REPAIR_BYTES = 256 << 20
"""Damage beyond this is cheaper to handle by fetching the whole part again."""
_PIECE = 8 << 20


@dataclass(frozen=True, kw_only=True)
class PartOutcome:
    """How one part went."""

    name: str
    status: str
    """``ok`` (fetched or adopted and verified), ``intact`` (re-checked by ``--reverify``
    against the manifest, nothing fetched), ``skipped`` (already mirrored), ``failed`` or
    ``interrupted`` (stopped on request; the next run resumes it)."""
    size: int = 0
    bytes_fetched: int = 0
    bytes_resumed: int = 0
    retries: int = 0
    restarts: int = 0
    repairs: int = 0
    """Rounds of damaged byte ranges fetched again."""
    seconds: float = 0.0
    extracted: bool = False
    error: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class _Server:
    """Reads bytes of the remote file again, in requests of their own."""

    client: HttpClient
    info: RemoteInfo
    policy: RetryPolicy
    stats: FetchStats

    def read(self, offset: int, length: int) -> bytes:
        return fetch_range(
            self.client, self.info, offset, length, policy=self.policy, stats=self.stats
        )


def check_download(
    reader: BinaryIO,
    info: RemoteInfo,
    local_part: Path,
    *,
    server: _Server | None = None,
) -> ZipCheck:
    """Check a part (as it downloads, or at rest): the zip (see
    :func:`.zipcheck.check_zip`; with ``server``, the bytes no checksum covers are read a
    second time from it), its Content-MD5 when the server sent one, and its size on disk
    against the server's."""
    check = check_zip(
        reader,
        info.size,
        want_md5=bool(info.content_md5),
        confirm=server.read if server is not None else None,
    )
    extra = []
    if (actual := local_part.stat().st_size) != info.size:
        extra.append(
            Problem(member="", problem=f"size {actual} differs from the server's {info.size}")
        )
    if info.content_md5 and check.content_md5 != info.content_md5:
        extra.append(
            Problem(
                member="",
                problem=f"MD5 {check.content_md5} differs from the server's Content-MD5 {info.content_md5}",
            )
        )
    return replace(check, problems=check.problems + tuple(extra)) if extra else check


def _describe(check: ZipCheck, limit: int = 5) -> str:
    shown = "; ".join(str(p) for p in check.problems[:limit])
    more = len(check.problems) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def mirror_part(
    part: PartPlan,
    settings: MirrorSettings,
    *,
    on_bytes: Callable[[int], None] | None = None,
    client: HttpClient | None = None,
) -> PartOutcome:
    """Bring one part of the plan to DEST (never raises for a part-level failure)."""
    start = time.monotonic()
    stats = FetchStats()

    def outcome(status: str, **more: Any) -> PartOutcome:
        return PartOutcome(
            name=part.name,
            status=status,
            size=part.size or 0,
            bytes_fetched=stats.bytes_fetched,
            bytes_resumed=stats.bytes_resumed,
            retries=stats.retries,
            restarts=stats.restarts,
            repairs=stats.repairs,
            seconds=time.monotonic() - start,
            **more,
        )

    if stop_requested():
        return outcome("interrupted", note="not started")
    try:
        status, extracted, note = _mirror_part(part, settings, stats, on_bytes, client)
    except JobInterrupted:
        return outcome("interrupted", note="stopped on request; the next run resumes it")
    except DavidDataError as exc:
        logger.error("%s failed: %s", part.name, exc)
        return outcome("failed", error=exc.message)
    except OSError as exc:
        logger.error("%s failed: %s", part.name, exc)
        return outcome("failed", error=f"{type(exc).__name__}: {exc}")
    return outcome(status, extracted=extracted, note=note)


def _mirror_part(
    part: PartPlan,
    settings: MirrorSettings,
    stats: FetchStats,
    on_bytes: Callable[[int], None] | None,
    client: HttpClient | None,
) -> tuple[str, bool, str]:
    """``(status, extracted, note)`` of a part that did not fail."""
    if part.action == "error":
        raise DavidDataError(part.reason)
    fs, dest = open_folder(settings.dest, settings.storage_options)
    final = join(dest, part.name)
    if part.action in ("skip", "extract"):
        return "skipped", _maybe_extract(fs, dest, part.name, part.action == "extract"), ""
    client = client or HttpClient(
        connect_timeout=settings.policy.connect_timeout, stall_timeout=settings.policy.stall_timeout
    )
    try:
        if part.action == "recheck":
            check = _check_final(fs, final, None)
            if check.ok and check.sha256 == part.sha256:
                logger.info("%s: re-checked against the manifest: intact", part.name)
                extracted = _maybe_extract(fs, dest, part.name, part.needs_extract)
                return "intact", extracted, "re-checked: intact"
            problem = _describe(check) or f"SHA-256 {check.sha256} differs from the manifest's"
            logger.warning("%s: fails its re-check (%s); downloading it again", part.name, problem)
        elif part.action == "adopt":
            assert part.remote is not None
            server = _Server(client=client, info=part.remote, policy=settings.policy, stats=stats)
            check = _check_final(fs, final, server)
            if check.ok:
                logger.info("%s: already present and verified; recording it", part.name)
                _record(fs, dest, part, part.remote, check)
                return "ok", _maybe_extract(fs, dest, part.name, settings.extract), "adopted"
            logger.warning(
                "%s: the file at DEST fails verification (%s); downloading it again",
                part.name,
                _describe(check),
            )
        work = scratch_dir_for(fs, dest, settings.scratch_dir) / part.name
        info, check = _download_verified(part, settings, stats, on_bytes, client, work)
    finally:
        client.close()
    local_part, state = part_paths(work)
    extracted = False
    if not is_local(fs) and settings.extract:
        # Extract from the local copy before it is uploaded and removed.
        with open(local_part, "rb") as handle:
            extract_zip(handle, part.name, fs, dest)
        extracted = True
    promote(local_part, fs, final)
    state.unlink(missing_ok=True)
    _record(fs, dest, part, info, check, extracted=extracted)
    logger.info(
        "%s: verified and in place (%d bytes, sha256 %s)", part.name, check.size, check.sha256
    )
    note = f"{stats.repairs} repair round(s)" if stats.repairs else ""
    return "ok", extracted or _maybe_extract(fs, dest, part.name, settings.extract), note


def _download_verified(
    part: PartPlan,
    settings: MirrorSettings,
    stats: FetchStats,
    on_bytes: Callable[[int], None] | None,
    client: HttpClient,
    work: Path,
) -> tuple[RemoteInfo, ZipCheck]:
    """Fetch the part into its ``.part`` file until it passes every check."""
    local_part, state = part_paths(work)
    options = FetchOptions(
        segments=settings.segments,
        segment_size=settings.segment_size,
        chunk_size=settings.chunk_size,
        checkpoint_bytes=settings.checkpoint_bytes,
        require_ranges=settings.require_ranges,
        policy=settings.policy,
    )
    previous_sha: str | None = None
    info: RemoteInfo | None = part.remote
    for attempt in range(1, _FETCH_ATTEMPTS + 1):

        def check(reader: BinaryIO, remote: RemoteInfo) -> ZipCheck:
            server = _Server(client=client, info=remote, policy=settings.policy, stats=stats)
            return check_download(reader, remote, local_part, server=server)

        info, found = fetch_file(
            part.url,
            work,
            client=client,
            check=check,
            options=options,
            on_bytes=on_bytes,
            stats=stats,
            info=info,
        )
        found, persistent = _repair(part.name, found, local_part, info, client, settings, stats)
        if found.ok:
            return info, found
        if persistent:
            remove_partial(local_part, state)
            raise VerificationError(
                f"{part.name} fails verification: {_describe(found)} (the server sent the same "
                "bytes again: the server's copy is corrupt)",
                part=part.name,
                problems=[str(p) for p in found.problems],
            )
        remove_partial(local_part, state)
        same = previous_sha is not None and previous_sha == found.sha256
        if same or attempt == _FETCH_ATTEMPTS:
            raise VerificationError(
                f"{part.name} fails verification: {_describe(found)}"
                + (
                    " (two downloads gave identical bytes: the server's copy is corrupt)"
                    if same
                    else ""
                ),
                part=part.name,
                problems=[str(p) for p in found.problems],
            )
        logger.warning(
            "%s fails verification (%s); downloading it again", part.name, _describe(found)
        )
        previous_sha, info = found.sha256, None
        stats.add(restarts=1)
    raise AssertionError("unreachable")  # pragma: no cover


def _repair(
    name: str,
    check: ZipCheck,
    local_part: Path,
    info: RemoteInfo,
    client: HttpClient,
    settings: MirrorSettings,
    stats: FetchStats,
) -> tuple[ZipCheck, bool]:
    """Fetch the byte ranges the problems name again and re-check the whole file, up to
    a few rounds. Returns the last check, and True when the server sent exactly the
    bytes already there (its copy is what it is: no use fetching again)."""
    server = _Server(client=client, info=info, policy=settings.policy, stats=stats)
    for _ in range(_REPAIR_ROUNDS):
        if check.ok or not check.repairable:
            return check, False
        ranges = check.ranges()
        total = sum(end - start for start, end in ranges)
        if total > min(_MAX_REPAIR_BYTES, info.size // 2):
            return check, False
        changed = 0
        fd = os.open(local_part, os.O_RDWR)
        try:
            for start, end in ranges:
                for at in range(start, end, _PIECE):
                    length = min(_PIECE, end - at)
                    fresh = server.read(at, length)
                    if fresh != os.pread(fd, length, at):
                        os.pwrite(fd, fresh, at)
                        changed += 1
            os.fsync(fd)
        finally:
            os.close(fd)
        if not changed:
            return check, True
        stats.add(repairs=1)
        logger.warning(
            "%s: fetched %d damaged byte range(s) again (%s): %s",
            name,
            len(ranges),
            human_bytes(total),
            _describe(check),
        )
        with open(local_part, "rb") as handle:
            check = check_download(handle, info, local_part, server=server)
    return check, False


def _check_final(fs: Files, final: str, server: _Server | None) -> ZipCheck:
    size = fs.size(final)
    with fs.open(final, "rb", block_size=8 << 20) as handle:
        return check_zip(handle, size, confirm=server.read if server is not None else None)


def _maybe_extract(fs: Files, dest: str, name: str, wanted: bool) -> bool:
    """Unpack the part at DEST when ``wanted`` and record it as extracted."""
    if not wanted:
        return False
    with fs.open(join(dest, name), "rb", block_size=8 << 20) as handle:
        extract_zip(handle, name, fs, dest)
    _mark_extracted(fs, dest, name)
    return True


def _record(
    fs: Files,
    dest: str,
    part: PartPlan,
    info: RemoteInfo,
    check: ZipCheck,
    *,
    extracted: bool = False,
) -> None:
    assert check.sha256 is not None
    record_parts(
        fs,
        dest,
        [
            PartRecord(
                name=part.name,
                url=part.url,
                size=check.size,
                etag=info.etag,
                last_modified=info.last_modified,
                content_md5=info.content_md5,
                sha256=check.sha256,
                member_count=check.member_count,
                sample_ids=compact_ranges(check.sample_ids),
                scenario_counts=check.scenario_counts,
                verified_at=now_iso(),
                extracted=extracted,
            )
        ],
    )


def _mark_extracted(fs: Files, dest: str, name: str) -> None:
    record = load_manifest(fs, dest).parts[name]
    record_parts(fs, dest, [replace(record, extracted=True)])


__all__ = ["PartOutcome", "check_download", "mirror_part"]
