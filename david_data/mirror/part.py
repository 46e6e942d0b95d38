"""Mirror one part: fetch (resuming), verify, promote, record, optionally extract.

Each step is safe to interrupt: the part takes its final name only after it passed
every check, and enters the manifest only after that. A part whose download keeps
failing verification is fetched again once; if the second copy has the same SHA-256 the
server's copy itself is corrupt, and the part is reported as such.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO

from ..errors import DavidDataError, VerificationError
from ..fsutil import is_local, join, resolve
from .extract import extract_zip
from .fetch import FetchOptions, FetchStats, fetch_file, part_paths, remove_partial
from .http import HttpClient, RemoteInfo
from .manifest import PartRecord, compact_ranges, load_manifest, now_iso, record_parts
from .plan import MirrorSettings, PartPlan
from .promote import promote, scratch_dir_for
from .zipcheck import Problem, ZipCheck, check_zip

logger = logging.getLogger(__name__)

_FETCH_ATTEMPTS = 2


@dataclass(frozen=True, kw_only=True)
class PartOutcome:
    """How one part went."""

    name: str
    status: str
    """``ok`` (fetched or adopted and verified), ``skipped`` (already mirrored) or ``failed``."""
    size: int = 0
    bytes_fetched: int = 0
    bytes_resumed: int = 0
    retries: int = 0
    restarts: int = 0
    seconds: float = 0.0
    extracted: bool = False
    error: str = ""


def check_download(reader: BinaryIO, info: RemoteInfo, local_part: Path) -> ZipCheck:
    """Check a part as it downloads: the zip (see :func:`.zipcheck.check_zip`), its
    Content-MD5 when the server sent one, and its size on disk against the server's."""
    check = check_zip(reader, info.size, want_md5=bool(info.content_md5))
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
    try:
        extracted = _mirror_part(part, settings, stats, on_bytes, client)
    except DavidDataError as exc:
        logger.error("%s failed: %s", part.name, exc)
        return PartOutcome(
            name=part.name,
            status="failed",
            size=part.size or 0,
            bytes_fetched=stats.bytes_fetched,
            bytes_resumed=stats.bytes_resumed,
            retries=stats.retries,
            restarts=stats.restarts,
            seconds=time.monotonic() - start,
            error=exc.message,
        )
    status = "skipped" if part.action in ("skip", "extract") else "ok"
    return PartOutcome(
        name=part.name,
        status=status,
        size=part.size or 0,
        bytes_fetched=stats.bytes_fetched,
        bytes_resumed=stats.bytes_resumed,
        retries=stats.retries,
        restarts=stats.restarts,
        seconds=time.monotonic() - start,
        extracted=extracted,
    )


def _mirror_part(
    part: PartPlan,
    settings: MirrorSettings,
    stats: FetchStats,
    on_bytes: Callable[[int], None] | None,
    client: HttpClient | None,
) -> bool:
    if part.action == "error":
        raise DavidDataError(part.reason)
    fs, dest = resolve(settings.dest, settings.storage_options)
    final = join(dest, part.name)
    if part.action in ("skip", "extract"):
        if on_bytes is not None and part.size:
            on_bytes(part.size)
        if part.action == "extract":
            with fs.open(final, "rb", block_size=8 << 20) as handle:
                extract_zip(handle, part.name, fs, dest)
            _mark_extracted(fs, dest, part.name)
            return True
        return False
    assert part.remote is not None
    if part.action == "adopt":
        check = _check_final(fs, final)
        if check.ok:
            logger.info("%s: already present and verified; recording it", part.name)
            if on_bytes is not None:
                on_bytes(check.size)
            _record(fs, dest, part, part.remote, check)
            return _maybe_extract(fs, dest, part, settings)
        logger.warning(
            "%s: the file at DEST fails verification (%s); downloading it again",
            part.name,
            _describe(check),
        )
    work = scratch_dir_for(fs, dest, settings.scratch_dir) / part.name
    local_part, state = part_paths(work)
    options = FetchOptions(
        segments=settings.segments,
        segment_size=settings.segment_size,
        chunk_size=settings.chunk_size,
        checkpoint_bytes=settings.checkpoint_bytes,
        policy=settings.policy,
    )
    client = client or HttpClient(
        connect_timeout=settings.policy.connect_timeout, stall_timeout=settings.policy.stall_timeout
    )
    previous_sha: str | None = None
    info: RemoteInfo | None = part.remote
    for attempt in range(1, _FETCH_ATTEMPTS + 1):
        info, check = fetch_file(
            part.url,
            work,
            client=client,
            check=partial(check_download, local_part=local_part),
            options=options,
            on_bytes=on_bytes,
            stats=stats,
            info=info,
        )
        if check.ok:
            break
        remove_partial(local_part, state)
        if on_bytes is not None:
            on_bytes(-info.size)
        same = previous_sha is not None and previous_sha == check.sha256
        if same or attempt == _FETCH_ATTEMPTS:
            raise VerificationError(
                f"{part.name} fails verification: {_describe(check)}"
                + (
                    " (two downloads gave identical bytes: the server's copy is corrupt)"
                    if same
                    else ""
                ),
                part=part.name,
                problems=[str(p) for p in check.problems],
            )
        logger.warning(
            "%s fails verification (%s); downloading it again", part.name, _describe(check)
        )
        previous_sha, info = check.sha256, None
        stats.add(restarts=1)
    assert info is not None
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
    return extracted or _maybe_extract(fs, dest, part, settings)


def _check_final(fs: object, final: str) -> ZipCheck:
    size = fs.size(final)  # type: ignore[attr-defined]
    with fs.open(final, "rb", block_size=8 << 20) as handle:  # type: ignore[attr-defined]
        return check_zip(handle, size)


def _maybe_extract(fs: object, dest: str, part: PartPlan, settings: MirrorSettings) -> bool:
    if not settings.extract:
        return False
    final = join(dest, part.name)
    with fs.open(final, "rb", block_size=8 << 20) as handle:  # type: ignore[attr-defined]
        extract_zip(handle, part.name, fs, dest)  # type: ignore[arg-type]
    _mark_extracted(fs, dest, part.name)
    return True


def _record(
    fs: object,
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
            PartRecord(  # type: ignore[arg-type]
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


def _mark_extracted(fs: object, dest: str, name: str) -> None:
    record = load_manifest(fs, dest).parts[name]  # type: ignore[arg-type]
    record_parts(fs, dest, [PartRecord(**{**record.__dict__, "extracted": True})])  # type: ignore[arg-type]


__all__ = ["PartOutcome", "check_download", "mirror_part"]
