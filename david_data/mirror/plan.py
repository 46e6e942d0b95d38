"""Plan a mirror run: what each part needs, how many bytes, how much disk.

A plan is plain data computed from a HEAD per part, the manifest at DEST and any
partial downloads; ``--dry-run`` prints it and resuming is planning again. Planning
also validates everything a run needs before it starts: the settings, a destination
that is a folder (or can become one) and can be written, a manifest that reads, and a
host that answers (the first request fails fast: no retries for a name that does not
resolve or a refused connection).

Actions per part:

- ``skip``: in the manifest, present with the recorded size and the server's ETag.
- ``extract``: like skip, but ``--extract`` still has to unpack it.
- ``recheck``: like skip, but ``--reverify`` asks to check it against the manifest
  first (it is fetched again if it fails). ``--reverify`` without ``--parts`` plans only
  the parts already at DEST (no HEAD, no download for the others); a part the manifest
  records but DEST lacks is then an ``error`` naming it (``--parts`` fetches it).
- ``adopt``: present under its final name but not (or differently) in the manifest
  (e.g. a run killed between rename and manifest): verify it, no download.
- ``resume``: a partial download of the same remote version exists.
- ``fetch``: download from scratch (also when the server's copy changed, or when
  ``verify`` found the copy at DEST damaged).
- ``error``: the part cannot be fetched (e.g. HTTP 404); reported, the rest goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import facts
from .._sizes import human_bytes
from ..errors import (
    ConfigError,
    DavidDataError,
    DownloadError,
    InsufficientSpaceError,
    PermanentDownloadError,
    UnreachableError,
)
from ..fsutil import (
    Files,
    LocalFiles,
    is_local,
    join,
    nearest_existing,
    open_folder,
    probe_write,
    refuse_zarr_folder,
    to_url,
)
from ..net.http import HttpClient, HttpStatusError, RemoteInfo, head_with_retries
from ..net.retry import RetryPolicy
from .manifest import MANIFEST_NAME, load_manifest
from .promote import scratch_dir_for
from .segmented import part_paths
from .state import load_state

MiB = 1 << 20
MAX_JOBS = 64


@dataclass(frozen=True, kw_only=True)
class MirrorSettings:
    """Everything a mirror run needs."""

    dest: str
    parts: tuple[str, ...]
    base_url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    jobs: int = 4
    """Parts downloaded at once."""
    segments: int = 4
    """Ranged connections per part."""
    segment_size: int = 32 * MiB
    chunk_size: int = 1 * MiB
    checkpoint_bytes: int | None = None
    extract: bool = False
    reverify: bool = False
    """Check every present part against the manifest before trusting it."""
    present_only: bool = False
    """Plan only the selected parts already at DEST (``--reverify`` without ``--parts``)."""
    require_ranges: bool = False
    """Fail a part (instead of downloading it in one stream) when the server ignores Range."""
    scratch_dir: str | None = None
    """Local folder for partial downloads when DEST is an object store."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not 1 <= self.jobs <= MAX_JOBS:
            raise ConfigError(f"--jobs must be between 1 and {MAX_JOBS} (got {self.jobs})")
        if isinstance(self.segments, bool) or not 1 <= self.segments <= 64:
            raise ConfigError(f"--segments must be between 1 and 64 (got {self.segments})")
        if not self.parts:
            raise ConfigError("no part selected; use --parts all, sample or indices like 0-3,7")
        scheme = urllib.parse.urlsplit(self.base_url).scheme.lower()
        if scheme not in ("http", "https") or not urllib.parse.urlsplit(self.base_url).hostname:
            raise ConfigError(
                f"--base-url {self.base_url!r} is not an http:// or https:// URL; give the "
                "folder URL the parts are served from"
            )

    @classmethod
    def from_options(
        cls,
        *,
        dest: str,
        parts: str | int | None = None,
        base_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
        jobs: int = 4,
        segments: int = 4,
        extract: bool = False,
        reverify: bool = False,
        require_ranges: bool = False,
    ) -> MirrorSettings:
        """Settings from the options a user types (``parts`` as '0-3,7', 'all', 59 ...;
        None: all, or with ``reverify`` the parts already at DEST)."""
        from ..settings import data_base_url

        return cls(
            dest=dest,
            parts=tuple(facts.parse_parts(str("all" if parts is None else parts))),
            present_only=reverify and parts is None,
            base_url=base_url or data_base_url(),
            storage_options=dict(storage_options or {}),
            jobs=jobs,
            segments=segments,
            extract=extract,
            reverify=reverify,
            require_ranges=require_ranges,
        )


@dataclass(frozen=True, kw_only=True)
class PartPlan:
    name: str
    url: str
    action: str
    size: int | None = None
    etag: str | None = None
    sha256: str | None = None
    """The manifest's SHA-256 (for ``recheck``)."""
    present: int = 0
    """Bytes already on disk (partial download, or the whole verified file)."""
    to_fetch: int = 0
    needs_extract: bool = False
    reason: str = ""
    remote: RemoteInfo | None = None


@dataclass(frozen=True, kw_only=True)
class MirrorPlan:
    settings: MirrorSettings
    parts: tuple[PartPlan, ...]
    work_dir: str
    """Local folder holding ``.part``/``.state`` files."""
    disk_needed: int
    free_bytes: int | None

    @property
    def bytes_to_fetch(self) -> int:
        return sum(p.to_fetch for p in self.parts)

    @property
    def bytes_present(self) -> int:
        return sum(p.present for p in self.parts)

    @property
    def total_bytes(self) -> int:
        return sum(p.size or 0 for p in self.parts)

    def render(self) -> str:
        """A human-readable table (what ``--dry-run`` prints)."""
        lines = [f"mirror plan for {self.settings.dest} (from {self.settings.base_url})", ""]
        lines.append(f"{'part':<24}{'action':<9}{'size':>12}{'present':>12}{'to fetch':>12}  note")
        for p in self.parts:
            size = human_bytes(p.size) if p.size is not None else "?"
            note = p.reason + (" +extract" if p.needs_extract else "")
            lines.append(
                f"{p.name:<24}{p.action:<9}{size:>12}{human_bytes(p.present):>12}"
                f"{human_bytes(p.to_fetch):>12}  {note}".rstrip()
            )
        free = human_bytes(self.free_bytes) if self.free_bytes is not None else "unknown"
        lines += [
            "",
            f"parts: {len(self.parts)}  bytes to fetch: {human_bytes(self.bytes_to_fetch)}  "
            f"already present: {human_bytes(self.bytes_present)}",
            f"local disk needed: {human_bytes(self.disk_needed)} in {self.work_dir} (free: {free})",
        ]
        return "\n".join(lines)


def check_destination(settings: MirrorSettings) -> None:
    """DEST must be a folder (or creatable as one) that this process can write; for an
    object store, the local scratch folder must be writable."""
    fs, dest = open_folder(settings.dest, settings.storage_options)
    if is_local(fs):
        refuse_zarr_folder(fs, dest, "DEST")
        folder = Path(dest)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"DEST {dest} is a file; give a folder for the mirror (it is created if missing)"
            )
        _check_writable(folder, dest)
        return
    try:
        is_file = fs.isfile(dest)
    except FileNotFoundError:
        is_file = False
    except Exception as exc:  # noqa: BLE001 - each store raises its own (auth, network, ...)
        raise ConfigError(
            f"cannot reach DEST {to_url(fs, dest)} ({type(exc).__name__}: {exc}); check the URL "
            "and the credentials (--storage-option, AZURE_STORAGE_* variables)"
        ) from exc
    if is_file:
        raise ConfigError(
            f"DEST {to_url(fs, dest)} is an object, not a folder (prefix); give a folder URL"
        )
    refuse_zarr_folder(fs, dest, "DEST")
    _check_writable(scratch_dir_for(fs, dest, settings.scratch_dir), "the local scratch folder")


def _check_writable(folder: Path, what: str) -> None:
    probe = nearest_existing(str(folder))
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise ConfigError(
            f"cannot create {what}: {probe} is a file; give a folder path that does not pass "
            "through a file"
        )
    try:
        probe_write(LocalFiles(), probe)
    except OSError as exc:
        why = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}.get(
            exc.errno or 0, exc.strerror or str(exc)
        )
        raise ConfigError(
            f"cannot write to {what} ({probe}: {why}); pick a writable folder or fix its "
            "permissions"
        ) from exc


def _probe_host(client: HttpClient, url: str, base_url: str) -> RemoteInfo | DavidDataError | None:
    """The first request, without retries for a host that cannot be reached at all."""
    hint = f"check --base-url ({base_url}) or your network"
    try:
        return client.head(url)
    except UnreachableError as exc:
        message = exc.message.replace("check the URL", f"check --base-url ({base_url})")
        if message == exc.message:
            message += f"; {hint}"
        raise UnreachableError(message, url=url) from exc
    except HttpStatusError:
        return None  # the host answers; plan with the usual retries
    except PermanentDownloadError as exc:
        return exc
    except DownloadError as exc:
        raise UnreachableError(
            f"{base_url} does not answer ({exc.message}); {hint}", url=url
        ) from exc
    finally:
        client.close()


def plan_mirror(settings: MirrorSettings, client: HttpClient | None = None) -> MirrorPlan:
    """Validate, then HEAD every selected part (with ``present_only``, those at DEST) and
    compare with DEST; no data is transferred. Raises :class:`ConfigError` / :class:`UnreachableError` /
    :class:`VerificationError` (an unreadable manifest) before anything is written."""
    check_destination(settings)
    fs, dest = open_folder(settings.dest, settings.storage_options)
    settings = dataclasses.replace(settings, dest=to_url(fs, dest))
    work = scratch_dir_for(fs, dest, settings.scratch_dir)
    manifest = load_manifest(fs, dest)
    present_sizes = _final_sizes(fs, dest, settings.parts)
    names, absent = settings.parts, dict[str, PartPlan]()
    if settings.present_only:
        names, absent = _present_parts(settings, manifest, present_sizes)
    heads = _heads(settings, names, client) if names else {}
    plans = [
        absent.get(name)
        or _plan_part(name, settings, heads[name], manifest, present_sizes.get(name), work)
        for name in settings.parts
        if name in absent or name in heads
    ]
    return MirrorPlan(
        settings=settings,
        parts=tuple(plans),
        work_dir=str(work),
        disk_needed=_disk_needed(plans, local_dest=is_local(fs), jobs=settings.jobs),
        free_bytes=_free_bytes(work),
    )


def _heads(
    settings: MirrorSettings, names: tuple[str, ...], client: HttpClient | None
) -> dict[str, RemoteInfo | DavidDataError]:
    """HEAD each part (the first one without retries for a host that cannot be reached)."""
    client = client or HttpClient(
        connect_timeout=settings.policy.connect_timeout, stall_timeout=settings.policy.stall_timeout
    )
    first = names[0]
    probed = _probe_host(client, facts.part_url(first, settings.base_url), settings.base_url)

    def head(name: str) -> RemoteInfo | DavidDataError:
        if name == first and probed is not None:
            return probed
        try:
            return head_with_retries(
                client, facts.part_url(name, settings.base_url), settings.policy
            )
        except DavidDataError as exc:
            return exc
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        return dict(zip(names, pool.map(head, names), strict=True))


def _present_parts(
    settings: MirrorSettings, manifest: Any, present: dict[str, int]
) -> tuple[tuple[str, ...], dict[str, PartPlan]]:
    """``--reverify`` without ``--parts``: the selected parts at DEST, and an ``error``
    entry for each part the manifest records that DEST lacks (none is fetched)."""
    recorded = set(manifest.parts) | set(manifest.suspect)
    names = tuple(n for n in settings.parts if n in present)
    absent = {}
    for name in settings.parts:
        if name in recorded and name not in present:
            index = facts.part_index(name)
            absent[name] = PartPlan(
                name=name,
                url=facts.part_url(name, settings.base_url),
                action="error",
                reason=f"recorded in {MANIFEST_NAME} but not at DEST; --reverify fetches only "
                f"parts named by --parts: rerun with --parts {'sample' if index is None else index}",
            )
    if not names and not absent:
        raise ConfigError(
            f"--reverify: DEST {settings.dest} holds no part to re-check; name the parts to "
            "mirror with --parts (e.g. --parts 0-3)"
        )
    return names, absent


def _plan_part(
    name: str,
    settings: MirrorSettings,
    remote: RemoteInfo | DavidDataError,
    manifest: Any,
    on_disk: int | None,
    work: Path,
) -> PartPlan:
    url = facts.part_url(name, settings.base_url)
    record = manifest.parts.get(name)
    suspect = manifest.suspect.get(name)
    if (
        record is not None
        and on_disk == record.size
        and (
            isinstance(remote, DavidDataError)
            or (remote.size == record.size and remote.etag == record.etag)
        )
    ):
        extract = settings.extract and not record.extracted
        action = "recheck" if settings.reverify else ("extract" if extract else "skip")
        reason = "--reverify: check it first" if settings.reverify else "verified earlier"
        return PartPlan(
            name=name,
            url=url,
            action=action,
            size=record.size,
            etag=record.etag,
            sha256=record.sha256,
            present=record.size,
            needs_extract=extract,
            reason=reason,
            remote=remote if isinstance(remote, RemoteInfo) else None,
        )
    if isinstance(remote, DavidDataError):
        return PartPlan(name=name, url=url, action="error", reason=remote.message)
    common: dict[str, Any] = dict(
        name=name,
        url=url,
        size=remote.size,
        etag=remote.etag,
        needs_extract=settings.extract,
        remote=remote,
    )
    if suspect is not None and on_disk is not None:
        reason = f"verify found it damaged ({suspect.found_at}): {suspect.problem}"
        return PartPlan(action="fetch", to_fetch=remote.size, reason=reason[:200], **common)
    if record is not None and on_disk == record.size:
        return PartPlan(
            action="fetch",
            to_fetch=remote.size,
            reason="changed on the server since it was mirrored",
            **common,
        )
    if on_disk == remote.size:
        return PartPlan(
            action="adopt",
            present=remote.size,
            reason="present but not in the manifest: will verify",
            **common,
        )
    state = load_state(part_paths(work / name)[1])
    if state is not None and state.matches(size=remote.size, etag=remote.etag):
        return PartPlan(
            action="resume",
            present=state.bytes_done,
            to_fetch=remote.size - state.bytes_done,
            **common,
        )
    return PartPlan(action="fetch", to_fetch=remote.size, **common)


def _final_sizes(fs: Files, dest: str, names: tuple[str, ...]) -> dict[str, int]:
    if is_local(fs):
        sizes = {}
        for name in names:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                sizes[name] = os.stat(join(dest, name)).st_size
        return sizes
    try:
        listing = fs.ls(dest, detail=True, refresh=True)
    except FileNotFoundError:
        return {}
    wanted = set(names)
    out = {}
    for entry in listing:
        base = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if base in wanted and entry.get("type") == "file":
            out[base] = int(entry["size"])
    return out


def _disk_needed(plans: list[PartPlan], *, local_dest: bool, jobs: int) -> int:
    fetching = [p.to_fetch for p in plans if p.action in ("fetch", "resume")]
    if local_dest:
        extract = sum(p.size or 0 for p in plans if p.needs_extract and p.action != "error")
        return sum(fetching) + extract
    # Object store: a part sits in local scratch until it is uploaded.
    return sum(sorted(fetching, reverse=True)[:jobs])


def _free_bytes(folder: Path) -> int | None:
    probe = nearest_existing(str(folder))
    if not os.path.exists(probe):
        return None
    stat = os.statvfs(probe)  # what shutil.disk_usage reads, without loading shutil
    return stat.f_bavail * stat.f_frsize


def check_space(plan: MirrorPlan) -> None:
    """Refuse to start when the local disk is too small for the plan."""
    if plan.free_bytes is not None and plan.disk_needed > plan.free_bytes:
        raise InsufficientSpaceError(
            f"not enough free space in {plan.work_dir}: the plan needs "
            f"{human_bytes(plan.disk_needed)} but only {human_bytes(plan.free_bytes)} is free; "
            "free some space, mirror fewer parts (--parts) or, for an object store, fewer at "
            "once (--jobs)",
            needed=plan.disk_needed,
            free=plan.free_bytes,
        )
