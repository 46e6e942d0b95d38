"""The conversion's work unit: a group of shards, each written whole, metadata last.

:func:`convert_group` takes one :class:`~.units.ShardGroup` (plain, picklable data with absolute
URLs and the exact zip members to read) and writes its shards one after another. For
each shard it reads the members out of the part zips, decodes and encodes every sample,
writes each array's shard object with one atomic write, then the shard's Parquet
metadata: the commit marker. A sample that cannot be converted becomes a
``status='error'`` row and is left out of the arrays; nothing a sample does stops the
shard. Stale temporaries of a shard (left by a killed run) are removed before it is
written. Run in this process, a group stops between samples once a stop was requested
(:func:`david_data.engine.stop_requested`); the shard in progress is simply redone by the
next run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from ..engine import stop_requested
from ..errors import DavidDataError
from ..format.layout import StoreLayout, open_layout
from ..format.metadata import STATUS_OK, rows_to_parquet
from ..format.objects import remove_stale_temporaries as _remove_stale_temporaries
from ..format.objects import write_shard_object as _write_buffers
from ..format.shard import shard_buffers
from ..fsutil import atomic_write_bytes, join, resolve
from ..net.http import is_http
from ..sources.parts import PartRef, RawFiles, SampleMembers
from ..sources.resolve import read_files
from .decode import decode_sample
from .metadata import error_row, sample_row
from .units import GroupResult, ShardGroup, ShardJob, ShardResult

logger = logging.getLogger(__name__)


class _Stopped(Exception):
    """A stop was requested while a shard was being written (it is redone next run)."""


def convert_group(group: ShardGroup) -> GroupResult:
    """Write the group's shards in order (see the module docstring)."""
    layout = open_layout(group.store_url, group.storage_options)
    refs = {p.name: p for p in group.parts}
    results: list[ShardResult] = []
    for job in group.jobs:
        try:
            results.append(_write_shard(layout, job, refs, group.source_options))
        except _Stopped:
            break
    return GroupResult(
        shards=tuple(results), not_done=tuple(j.shard for j in group.jobs[len(results) :])
    )


def _write_shard(
    layout: StoreLayout,
    job: ShardJob,
    refs: dict[str, PartRef],
    source_options: dict[str, Any] | None,
) -> ShardResult:
    try:
        return _convert_shard(layout, job, refs, source_options)
    except _Stopped:
        raise
    except Exception as exc:  # the shard stays uncommitted; the next run redoes it
        if isinstance(exc, DavidDataError):  # a fault we describe (a part that changed...)
            logger.warning("shard %d not committed: %s", job.shard, exc)
            logger.debug("shard %d", job.shard, exc_info=True)
        else:
            logger.exception("shard %d failed", job.shard)
        return ShardResult(shard=job.shard, error=f"{type(exc).__name__}: {exc}")


def _convert_shard(
    layout: StoreLayout,
    job: ShardJob,
    refs: dict[str, PartRef],
    source_options: dict[str, Any] | None,
) -> ShardResult:
    size = layout.shard_size
    base = job.shard * size
    chunks: dict[str, list[bytes | None]] = {name: [None] * size for name in layout.codecs}
    rows: list[dict[str, Any]] = []
    for sid, part_name, reason in job.conflicts:
        rows.append(
            error_row(
                sid, reason, part=part_name, part_sha256=refs[part_name].sha256, shard=job.shard
            )
        )
    preread = dict(job.preread)
    for part_name, samples in job.sources:
        ref = refs[part_name]
        for sid, files in _files(ref, samples, preread, source_options):
            if stop_requested():
                raise _Stopped
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
                    str(exc) if isinstance(exc, DavidDataError) else f"{type(exc).__name__}: {exc}"
                )
                rows.append(
                    error_row(sid, reason, part=part_name, part_sha256=ref.sha256, shard=job.shard)
                )
                continue
            for name, data in encoded.items():
                chunks[name][sid - base] = data
            rows.append(sample_row(sample, part=part_name, part_sha256=ref.sha256, shard=job.shard))
    marker_path = layout.metadata_path(job.shard)
    _remove_stale_temporaries(
        layout, [layout.shard_path(n, job.shard) for n in chunks] + [marker_path]
    )
    written = 0
    for name, shard_chunks in chunks.items():
        path = layout.shard_path(name, job.shard)
        if any(c is not None for c in shard_chunks):
            buffers = shard_buffers(shard_chunks, layout.shard_index[name])
            _write_buffers(layout, path, buffers)
            written += sum(len(b) for b in buffers)
        else:
            with contextlib.suppress(FileNotFoundError):
                layout.fs.rm_file(path)  # left over from an earlier attempt
    marker = rows_to_parquet(rows)
    atomic_write_bytes(layout.fs, marker_path, marker)
    failures = tuple(
        (r["sample_id"], r["part"], r["error"]) for r in rows if r["status"] != STATUS_OK
    )
    return ShardResult(
        shard=job.shard,
        samples_ok=len(rows) - len(failures),
        failures=failures,
        bytes_written=written + len(marker),
    )


def _files(
    ref: PartRef,
    samples: tuple[SampleMembers, ...],
    preread: dict[int, RawFiles],
    source_options: dict[str, Any] | None,
) -> Iterator[tuple[int, RawFiles]]:
    """Each sample's files, in order: those the plan already read, the rest read now."""
    todo = [s for s in samples if s.sample_id not in preread]
    read = read_files(ref, todo, storage_options=source_options) if todo else iter(())
    for sample in samples:
        if sample.sample_id in preread:
            yield sample.sample_id, preread[sample.sample_id]
        else:
            yield next(read)


def unseen_paths(
    source_url: str,
    store_url: str,
    source_options: dict[str, Any] | None,
    storage_options: dict[str, Any] | None,
) -> list[str]:
    """What of SRC and STORE this machine cannot see (run on every worker before a
    conversion spreads over a cluster: a path local to the client is not on the workers)."""
    missing = []
    for what, url, options, marker in (
        ("SRC", source_url, source_options, ""),
        ("STORE", store_url, storage_options, "zarr.json"),
    ):
        if is_http(url):
            continue  # a host's base URL is no file; a worker that cannot reach it fails its units
        try:
            fs, path = resolve(url, options)
            if not fs.exists(join(path, marker) if marker else path):
                missing.append(f"{what} {url}")
        except Exception as exc:  # noqa: BLE001 - reported to the client by name
            missing.append(f"{what} {url} ({type(exc).__name__}: {exc})")
    return missing
