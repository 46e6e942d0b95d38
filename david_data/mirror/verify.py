"""``david-data verify DEST``: re-check a mirror against its manifest.

Full mode re-reads every part once: size, SHA-256 and every member's CRC-32, plus the
member set. ``quick`` checks presence, size, the central directory and the member set
(reads only each zip's tail). The report sorts files into good, corrupt, missing and
unexpected, names the part and the member of each problem, and lists leftovers of an
interrupted run (``.part``/``.state``/staging files) separately.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import facts
from ..fsutil import STAGING_SUFFIX, resolve, to_url
from ..progress import NullProgress, Progress
from .lock import LOCK_NAME
from .manifest import MANIFEST_NAME, PartRecord, compact_ranges, load_manifest
from .zipcheck import check_zip

_PARTIAL_SUFFIXES = (".part", ".state", ".tmp", STAGING_SUFFIX, ".lock")


@dataclass(frozen=True, kw_only=True)
class FileVerdict:
    name: str
    status: str
    """``good``, ``corrupt``, ``missing`` or ``unexpected``."""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    dest: str
    quick: bool
    files: tuple[FileVerdict, ...]
    partial: tuple[str, ...]
    """Leftovers of an interrupted run (not an error: rerun mirror to finish)."""

    def by_status(self, status: str) -> tuple[FileVerdict, ...]:
        return tuple(f for f in self.files if f.status == status)

    @property
    def ok(self) -> bool:
        return all(f.status == "good" for f in self.files)

    def render(self) -> str:
        mode = (
            "quick check (sizes, central directories, member sets)"
            if self.quick
            else ("full check (size, SHA-256, every member's CRC-32)")
        )
        counts = ", ".join(
            f"{len(self.by_status(s))} {s}" for s in ("good", "corrupt", "missing", "unexpected")
        )
        lines = [f"verify {self.dest}: {mode}", counts]
        for verdict in self.files:
            if verdict.status == "good":
                continue
            lines.append(f"  {verdict.status.upper()} {verdict.name}")
            lines.extend(f"    {problem}" for problem in verdict.problems[:20])
            if len(verdict.problems) > 20:
                lines.append(f"    ... and {len(verdict.problems) - 20} more")
        if self.partial:
            lines.append(
                "unfinished downloads (rerun 'david-data mirror' to complete them): "
                + ", ".join(self.partial)
            )
        lines.append("all good" if self.ok else "PROBLEMS FOUND: re-mirror the parts named above")
        return "\n".join(lines)


def verify_mirror(
    dest: str,
    storage_options: dict[str, Any] | None = None,
    *,
    quick: bool = False,
    progress: Progress = NullProgress(),  # noqa: B008
    jobs: int = 4,
) -> VerifyReport:
    """Check every part recorded in ``DEST/manifest.json`` (see module docstring)."""
    fs, path = resolve(dest, storage_options)
    manifest = load_manifest(fs, path)
    try:
        listing = (
            {
                e["name"].rstrip("/").rsplit("/", 1)[-1]: e
                for e in fs.ls(path, detail=True, refresh=True)
                if e.get("type") == "file"
            }
            if fs.exists(path)
            else {}
        )
    except TypeError:  # filesystems without a refresh flag
        listing = {
            e["name"].rstrip("/").rsplit("/", 1)[-1]: e
            for e in fs.ls(path, detail=True)
            if e.get("type") == "file"
        }
    bar = progress.task("verify", total=len(manifest.parts), unit="parts")

    def one(record: PartRecord) -> FileVerdict:
        try:
            return _verify_part(fs, path, record, listing.get(record.name), quick)
        finally:
            bar.advance(1)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(manifest.parts) or 1))) as pool:
        verdicts = list(pool.map(one, manifest.parts.values()))
    bar.finish("done")
    partial = []
    for name in sorted(listing):
        if name in manifest.parts or name in (MANIFEST_NAME, LOCK_NAME):
            continue
        if name.endswith(_PARTIAL_SUFFIXES):
            partial.append(name)
        elif facts.is_part_name(name):
            verdicts.append(
                FileVerdict(
                    name=name,
                    status="unexpected",
                    problems=(
                        "a part that is not in the manifest: rerun 'david-data mirror' with it selected "
                        "to verify and record it",
                    ),
                )
            )
        else:
            verdicts.append(
                FileVerdict(name=name, status="unexpected", problems=("not a SynthHuman part",))
            )
    return VerifyReport(
        dest=to_url(fs, path), quick=quick, files=tuple(verdicts), partial=tuple(partial)
    )


def _verify_part(
    fs: Any, dest: str, record: PartRecord, entry: dict[str, Any] | None, quick: bool
) -> FileVerdict:
    name = record.name
    if entry is None:
        return FileVerdict(
            name=name, status="missing", problems=(f"{name} is in the manifest but not at DEST",)
        )
    size = int(entry["size"])
    if size != record.size:
        return FileVerdict(
            name=name,
            status="corrupt",
            problems=(f"{name}: size {size} bytes, the manifest records {record.size}",),
        )
    with fs.open(f"{dest}/{name}", "rb", block_size=8 << 20) as handle:
        check = check_zip(handle, size, quick=quick)
    problems = [
        f"{name}: member {p.member}: {p.problem}" if p.member else f"{name}: {p.problem}"
        for p in check.problems
    ]
    if not quick and check.sha256 != record.sha256:
        problems.append(
            f"{name}: SHA-256 {check.sha256} differs from the manifest's {record.sha256}"
        )
    if check.member_count and check.member_count != record.member_count:
        problems.append(
            f"{name}: {check.member_count} members, the manifest records {record.member_count}"
        )
    if check.sample_ids and compact_ranges(check.sample_ids) != record.sample_ids:
        problems.append(
            f"{name}: holds samples {compact_ranges(check.sample_ids)}, the manifest "
            f"records {record.sample_ids}"
        )
    return FileVerdict(
        name=name, status="corrupt" if problems else "good", problems=tuple(problems)
    )
