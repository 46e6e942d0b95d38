"""Plan a mirror run: what each part needs, how many bytes, how much disk.

A plan is plain data computed from a HEAD per part, the manifest at DEST and any
partial downloads; ``--dry-run`` prints it and resuming is planning again.

Actions per part:

- ``skip``: in the manifest, present with the recorded size and the server's ETag.
- ``extract``: like skip, but ``--extract`` still has to unpack it.
- ``adopt``: present under its final name but not (or differently) in the manifest
  (e.g. a run killed between rename and manifest): verify it, no download.
- ``resume``: a partial download of the same remote version exists.
- ``fetch``: download from scratch (also when the server's copy changed).
- ``error``: the part cannot be fetched (e.g. HTTP 404); reported, the rest goes on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import facts
from ..errors import DavidDataError, InsufficientSpaceError
from ..fsutil import is_local, join, resolve, to_url
from .fetch import head_with_retries, part_paths
from .http import HttpClient, RemoteInfo
from .manifest import load_manifest
from .promote import scratch_dir_for
from .retry import RetryPolicy
from .state import load_state

MiB = 1 << 20


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
    scratch_dir: str | None = None
    """Local folder for partial downloads when DEST is an object store."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1 (got {self.jobs})")
        if not 1 <= self.segments <= 64:
            raise ConfigError(f"--segments must be between 1 and 64 (got {self.segments})")
        if not self.parts:
            raise ConfigError("no part selected")


@dataclass(frozen=True, kw_only=True)
class PartPlan:
    name: str
    url: str
    action: str
    size: int | None = None
    etag: str | None = None
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


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def plan_mirror(settings: MirrorSettings, client: HttpClient | None = None) -> MirrorPlan:
    """HEAD every selected part and compare with DEST; no data is transferred."""
    fs, dest = resolve(settings.dest, settings.storage_options)
    work = scratch_dir_for(fs, dest, settings.scratch_dir)
    manifest = load_manifest(fs, dest)
    client = client or HttpClient(
        connect_timeout=settings.policy.connect_timeout, stall_timeout=settings.policy.stall_timeout
    )

    def head(name: str) -> RemoteInfo | DavidDataError:
        try:
            return head_with_retries(
                client, facts.part_url(name, settings.base_url), settings.policy
            )
        except DavidDataError as exc:
            return exc
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=min(8, len(settings.parts))) as pool:
        heads = dict(zip(settings.parts, pool.map(head, settings.parts), strict=True))
    present_sizes = _final_sizes(fs, dest, settings.parts)
    plans = []
    for name in settings.parts:
        url = facts.part_url(name, settings.base_url)
        remote = heads[name]
        record = manifest.parts.get(name)
        on_disk = present_sizes.get(name)
        if (
            record is not None
            and on_disk == record.size
            and (
                isinstance(remote, DavidDataError)
                or (remote.size == record.size and remote.etag == record.etag)
            )
        ):
            extract = settings.extract and not record.extracted
            plans.append(
                PartPlan(
                    name=name,
                    url=url,
                    action="extract" if extract else "skip",
                    size=record.size,
                    etag=record.etag,
                    present=record.size,
                    needs_extract=extract,
                    reason="verified earlier",
                )
            )
            continue
        if isinstance(remote, DavidDataError):
            plans.append(PartPlan(name=name, url=url, action="error", reason=remote.message))
            continue
        common: dict[str, Any] = dict(
            name=name,
            url=url,
            size=remote.size,
            etag=remote.etag,
            needs_extract=settings.extract,
            remote=remote,
        )
        if record is not None and on_disk == record.size:
            plans.append(
                PartPlan(
                    action="fetch",
                    to_fetch=remote.size,
                    reason="changed on the server since it was mirrored",
                    **common,
                )
            )
            continue
        if on_disk == remote.size:
            plans.append(
                PartPlan(
                    action="adopt",
                    present=remote.size,
                    reason="present but not in the manifest: will verify",
                    **common,
                )
            )
            continue
        state = load_state(part_paths(work / name)[1])
        if state is not None and state.matches(size=remote.size, etag=remote.etag):
            plans.append(
                PartPlan(
                    action="resume",
                    present=state.bytes_done,
                    to_fetch=remote.size - state.bytes_done,
                    **common,
                )
            )
            continue
        plans.append(PartPlan(action="fetch", to_fetch=remote.size, **common))  # type: ignore[arg-type]
    return MirrorPlan(
        settings=settings,
        parts=tuple(plans),
        work_dir=str(work),
        disk_needed=_disk_needed(plans, local_dest=is_local(fs), jobs=settings.jobs),
        free_bytes=_free_bytes(work),
    )


def _final_sizes(fs: Any, dest: str, names: tuple[str, ...]) -> dict[str, int]:
    if is_local(fs):
        sizes = {}
        for name in names:
            with contextlib.suppress(FileNotFoundError):
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
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return None
        probe = probe.parent
    return shutil.disk_usage(probe).free


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


def dest_url(settings: MirrorSettings) -> str:
    fs, dest = resolve(settings.dest, settings.storage_options)
    return to_url(fs, dest)
