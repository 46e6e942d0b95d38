"""Execute a conversion plan: one task per shard, each shard written whole, metadata last.

``convert_shard`` is the unit of work (picklable arguments, runs in a worker process):
it reads the shard's members out of the part zips, decodes each sample, encodes its
chunks, writes each array's shard object with one atomic write, then writes the shard's
Parquet metadata: the commit marker. Bad samples become ``status='error'`` rows and are
left out of the arrays; nothing a sample does stops the shard.

Parallelism is a pool of processes (:class:`ShardRunner`): decoding PNG/EXR and encoding
chunks hold the GIL for much of their time, so threads do not scale (see
``benchmarks/bench_convert.py``), while processes do.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import multiprocessing
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import DavidDataError
from ..fsutil import atomic_write_bytes, resolve
from ..progress import NullProgress, Progress, TaskHandle
from .decode import decode_sample
from ..format.layout import StoreLayout, create_store, open_layout
from ..format.metadata import STATUS_OK, rows_to_parquet
from .metadata import error_row, sample_row
from .plan import ConversionPlan, ShardJob, detect_dtypes, plan_conversion
from ..format.shard import encode_shard
from .source import PartSource, Source, open_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PartRef:
    """Enough to reopen a part in another process."""

    name: str
    url: str
    is_zip: bool
    size: int
    sha256: str | None


@dataclass(frozen=True, kw_only=True)
class ShardTask:
    """Picklable description of one shard to write."""

    job: ShardJob
    parts: dict[str, PartRef]
    store_url: str
    storage_options: dict[str, Any] | None = None
    source_options: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ShardResult:
    shard: int
    samples_ok: int = 0
    failures: tuple[tuple[int, str, str], ...] = ()
    """``(sample_id, part, reason)`` of samples that could not be converted."""
    bytes_written: int = 0
    error: str | None = None
    """Set when the shard itself could not be written (it stays uncommitted)."""


@lru_cache(maxsize=8)
def _layout(url: str, options: str) -> StoreLayout:
    return open_layout(url, json.loads(options) or None)


@lru_cache(maxsize=4)
def _part(ref: PartRef, options: str) -> PartSource:
    fs, path = resolve(ref.url, json.loads(options) or None)
    return PartSource(
        name=ref.name, url=ref.url, fs=fs, path=path, is_zip=ref.is_zip, size=ref.size
    )


def _options_key(options: dict[str, Any] | None) -> str:
    return json.dumps(options or {}, sort_keys=True)


def convert_shard(task: ShardTask) -> ShardResult:
    """Convert one shard and commit it (arrays first, metadata last)."""
    job = task.job
    try:
        layout = _layout(task.store_url, _options_key(task.storage_options))
        size = layout.shard_size
        base = job.shard * size
        chunks: dict[str, list[bytes | None]] = {name: [None] * size for name in layout.codecs}
        rows: list[dict[str, Any]] = []
        for part_name, ids in job.sources:
            ref = task.parts[part_name]
            part = _part(ref, _options_key(task.source_options))
            for sid, files in part.read_samples(ids):
                try:
                    sample = decode_sample(
                        sid,
                        files,
                        depth_dtype=layout.dtypes["depth"],
                        normal_dtype=layout.dtypes["normal"],
                    )
                    encoded = {
                        name: layout.codecs[name].encode(a) for name, a in sample.arrays().items()
                    }
                except Exception as exc:  # any decode/encode failure is this sample's alone
                    reason = (
                        str(exc)
                        if isinstance(exc, DavidDataError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    rows.append(
                        error_row(
                            sid, reason, part=part_name, part_sha256=ref.sha256, shard=job.shard
                        )
                    )
                    continue
                for name, data in encoded.items():
                    chunks[name][sid - base] = data
                rows.append(
                    sample_row(sample, part=part_name, part_sha256=ref.sha256, shard=job.shard)
                )
        written = 0
        for name, shard_chunks in chunks.items():
            path = layout.shard_path(name, job.shard)
            if any(c is not None for c in shard_chunks):
                data = encode_shard(shard_chunks)
                atomic_write_bytes(layout.fs, path, data)
                written += len(data)
            else:
                with contextlib.suppress(FileNotFoundError):
                    layout.fs.rm_file(path)  # left over from an earlier attempt
        marker = rows_to_parquet(rows)
        atomic_write_bytes(layout.fs, layout.metadata_path(job.shard), marker)
    except Exception as exc:
        logger.exception("shard %d failed", job.shard)
        return ShardResult(shard=job.shard, error=f"{type(exc).__name__}: {exc}")
    failures = tuple(
        (r["sample_id"], r["part"], r["error"]) for r in rows if r["status"] != STATUS_OK
    )
    return ShardResult(
        shard=job.shard,
        samples_ok=len(rows) - len(failures),
        failures=failures,
        bytes_written=written + len(marker),
    )


class ShardRunner:
    """Runs shard tasks on ``workers`` processes (in this process when ``workers == 1``).

    Use as a context manager; ``run`` may be called from several threads at once (one
    per part task in the Prefect flow), all sharing the same processes.
    """

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> ShardRunner:
        if self.workers > 1:
            # spawn: forking a process that runs threads (Prefect, fsspec loops) can deadlock.
            self._pool = cf.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: list[ShardTask], handle: TaskHandle | None = None) -> list[ShardResult]:
        results: list[ShardResult] = []
        if self._pool is None:
            for task in tasks:
                results.append(convert_shard(task))
                if handle:
                    handle.advance(len(task.job.sample_ids))
            return results
        futures = {self._pool.submit(convert_shard, t): t for t in tasks}
        for future in cf.as_completed(futures):
            task = futures[future]
            try:
                results.append(future.result())
            except Exception as exc:  # a worker died (e.g. killed by the OOM killer)
                results.append(
                    ShardResult(
                        shard=task.job.shard, error=f"worker failed: {type(exc).__name__}: {exc}"
                    )
                )
            if handle:
                handle.advance(len(task.job.sample_ids))
        return sorted(results, key=lambda r: r.shard)


@dataclass(frozen=True, kw_only=True)
class ConversionReport:
    """What a conversion did; ``ok`` is False when any sample or shard failed."""

    source_url: str
    store_url: str
    shards_written: int
    shards_skipped: int
    samples_ok: int
    sample_failures: tuple[tuple[int, str, str], ...] = ()
    shard_failures: tuple[tuple[int, str], ...] = ()
    bytes_written: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    plan_text: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return not self.sample_failures and not self.shard_failures

    def summary(self) -> str:
        rate = self.samples_ok / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.store_url}: {self.shards_written} shards written, {self.shards_skipped} already committed; "
            f"{self.samples_ok:,} samples converted, {len(self.sample_failures)} failed "
            f"({self.bytes_written / 1e6:,.1f} MB, {self.seconds:.1f} s, {rate:.1f} samples/s)"
        ]
        for shard, reason in self.shard_failures:
            lines.append(f"  shard {shard} NOT written: {reason} (rerun to retry)")
        for sid, part, reason in self.sample_failures[:20]:
            lines.append(f"  sample {sid} ({part}): {reason}")
        if len(self.sample_failures) > 20:
            lines.append(
                f"  ... and {len(self.sample_failures) - 20} more: query them with status = 'error'"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = [
            "| shards written | shards skipped | samples ok | samples failed | shards failed | MB written | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {self.shards_written} | {self.shards_skipped} | {self.samples_ok} | {len(self.sample_failures)} "
            f"| {len(self.shard_failures)} | {self.bytes_written / 1e6:.1f} | {self.seconds:.1f} |",
        ]
        if self.sample_failures or self.shard_failures:
            rows += ["", "| item | part | reason |", "| --- | --- | --- |"]
            rows += [f"| shard {s} | | {r} |" for s, r in self.shard_failures]
            rows += [
                f"| sample {i} | {p} | {r.replace('|', '/')} |"
                for i, p, r in self.sample_failures[:200]
            ]
        return f"# Conversion of {self.source_url}\n\nStore: `{self.store_url}`\n\n" + "\n".join(
            rows
        )


def part_sha256(layout: StoreLayout, part: PartSource) -> str | None:
    """SHA-256 of a part zip, cached in the store under ``parts/`` by size and mtime/ETag."""
    if not part.is_zip:
        return None
    if part.recorded_sha256:
        return part.recorded_sha256
    fingerprint = part.fingerprint()
    path = layout.part_cache_path(part.name)
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        cached = json.loads(layout.fs.cat_file(path))
        if cached["fingerprint"] == fingerprint:
            return str(cached["sha256"])
    digest = part.sha256()
    record = {"part": part.name, "url": part.url, "fingerprint": fingerprint, "sha256": digest}
    atomic_write_bytes(layout.fs, path, json.dumps(record, indent=1).encode())
    return digest


def prepare_store(
    plan: ConversionPlan,
    source: Source,
    storage_options: dict[str, Any] | None = None,
) -> StoreLayout:
    """Create the store (pixel types taken from the source) or check the existing one."""
    try:
        return open_layout(plan.store_url, storage_options)
    except DavidDataError:
        pass
    dtypes: dict[str, np.dtype] = detect_dtypes(source, list(plan.parts))
    return create_store(
        plan.store_url,
        storage_options,
        profile=plan.profile,
        shard_size=plan.shard_size,
        dtypes=dtypes,
        source=source.url,
    )


def part_tasks(
    plan: ConversionPlan,
    source: Source,
    layout: StoreLayout,
    part: str,
    *,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
) -> list[ShardTask]:
    """The shard tasks of one part (checksumming the parts they read)."""
    jobs = plan.jobs_by_part().get(part, [])
    names = {name for job in jobs for name, _ in job.sources}
    refs = {}
    for name in sorted(names):
        p = source.part(name)
        refs[name] = PartRef(
            name=p.name, url=p.url, is_zip=p.is_zip, size=p.size, sha256=part_sha256(layout, p)
        )
    return [
        ShardTask(
            job=job,
            parts=refs,
            store_url=plan.store_url,
            storage_options=storage_options,
            source_options=source_options,
        )
        for job in jobs
    ]


def summarise(plan: ConversionPlan, results: list[ShardResult], seconds: float) -> ConversionReport:
    """Fold shard results into a report."""
    good = [r for r in results if r.error is None]
    return ConversionReport(
        source_url=plan.source_url,
        store_url=plan.store_url,
        shards_written=len(good),
        shards_skipped=len(plan.committed),
        samples_ok=sum(r.samples_ok for r in good),
        sample_failures=tuple(f for r in good for f in r.failures),
        shard_failures=tuple((r.shard, r.error) for r in results if r.error is not None),
        bytes_written=sum(r.bytes_written for r in good),
        seconds=seconds,
        plan_text=plan.describe(),
    )


def convert(
    source_url: str,
    store_url: str,
    *,
    parts: list[str] | None = None,
    profile: str = "fast",
    shard_size: int | None = None,
    workers: int = 1,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ConversionReport:
    """Convert parts of a source into a store (the library path; the CLI runs the flow)."""
    progress = progress or NullProgress()
    start = time.monotonic()
    source = open_source(source_url, source_options)
    plan = plan_conversion(
        source,
        store_url,
        parts=parts,
        profile=profile,
        shard_size=shard_size,
        storage_options=storage_options,
    )
    if not plan.jobs:
        return summarise(plan, [], time.monotonic() - start)
    layout = prepare_store(plan, source, storage_options)
    handle = progress.task("converting", total=plan.samples_to_write, unit="samples")
    results: list[ShardResult] = []
    with ShardRunner(workers) as runner:
        for part in plan.jobs_by_part():
            tasks = part_tasks(
                plan,
                source,
                layout,
                part,
                storage_options=storage_options,
                source_options=source_options,
            )
            results += runner.run(tasks, handle)
    handle.finish(
        "done" if all(r.error is None and not r.failures for r in results) else "with failures"
    )
    return summarise(plan, results, time.monotonic() - start)


__all__ = [
    "ConversionReport",
    "PartRef",
    "ShardResult",
    "ShardRunner",
    "ShardTask",
    "convert",
    "convert_shard",
    "part_tasks",
    "prepare_store",
    "summarise",
]
