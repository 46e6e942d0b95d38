"""Plan a conversion: which shards to write, from which parts, skipping committed ones.

A shard covers sample ids ``K*S ... K*S+S-1``. Its sample ids come from member names
read out of the parts' zip directories. A shard normally lies inside one part (S divides
5000). Should two parts ever hold ids of the same shard, the plan makes ONE job reading
from both parts, so each shard still has exactly one writer; neighbouring parts of the
source (index +-1) are listed too, so such a shard is complete whichever ``--parts`` are
chosen. A committed shard (its metadata exists) is skipped, unless it spans parts and its
metadata lacks ids the source now holds: then it is rewritten whole.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from .. import facts
from ..errors import SampleDecodeError, StoreError
from .decode import decode_sample
from ..format.layout import DEFAULT_SHARD_SIZE, StoreLayout, open_layout
from .source import PartSource, Source

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ShardJob:
    """One shard to write: its index and the sample ids each part contributes."""

    shard: int
    sources: tuple[tuple[str, tuple[int, ...]], ...]
    """``(part name, sample ids)`` pairs; usually one part."""

    @property
    def part(self) -> str:
        """The part that owns this job (the first one)."""
        return self.sources[0][0]

    @property
    def sample_ids(self) -> list[int]:
        return sorted(i for _, ids in self.sources for i in ids)


@dataclass(frozen=True, kw_only=True)
class ConversionPlan:
    """Plain data: what a conversion will do. ``describe()`` is the ``--dry-run`` output."""

    source_url: str
    store_url: str
    profile: str
    shard_size: int
    parts: tuple[str, ...]
    jobs: tuple[ShardJob, ...]
    committed: tuple[int, ...]
    samples_in_parts: int

    @property
    def samples_to_write(self) -> int:
        return sum(len(j.sample_ids) for j in self.jobs)

    def jobs_by_part(self) -> dict[str, list[ShardJob]]:
        groups: dict[str, list[ShardJob]] = defaultdict(list)
        for job in self.jobs:
            groups[job.part].append(job)
        return dict(groups)

    def describe(self) -> str:
        lines = [
            f"convert {self.source_url} -> {self.store_url} (profile {self.profile}, {self.shard_size} samples/shard)",
            f"parts: {len(self.parts)}, samples in them: {self.samples_in_parts:,}",
            f"shards already committed (skipped): {len(self.committed)}",
            f"shards to write: {len(self.jobs)} ({self.samples_to_write:,} samples)",
        ]
        for part, jobs in self.jobs_by_part().items():
            shards = [j.shard for j in jobs]
            lines.append(
                f"  {part}: {len(jobs)} shards ({min(shards)}-{max(shards)}), "
                f"{sum(len(j.sample_ids) for j in jobs):,} samples"
            )
        return "\n".join(lines)


def _existing_layout(store_url: str, storage_options: dict[str, Any] | None) -> StoreLayout | None:
    try:
        return open_layout(store_url, storage_options)
    except StoreError:
        return None


def _neighbours(source: Source, selected: list[PartSource]) -> list[PartSource]:
    chosen = {p.name for p in selected}
    indices = {facts.part_index(p.name) for p in selected} - {None}
    wanted = {i + d for i in indices for d in (-1, 1) if i is not None}
    return [p for p in source.parts if p.name not in chosen and facts.part_index(p.name) in wanted]


def _committed_ids(layout: StoreLayout, shard: int) -> set[int]:
    with layout.fs.open(layout.metadata_path(shard), "rb") as handle:
        return set(pq.read_table(handle, columns=["sample_id"]).column(0).to_pylist())


def plan_conversion(
    source: Source,
    store_url: str,
    *,
    parts: list[str] | None = None,
    profile: str = "fast",
    shard_size: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> ConversionPlan:
    """Plan the shards to write for ``parts`` of ``source`` (all parts when None)."""
    layout = _existing_layout(store_url, storage_options)
    size = layout.shard_size if layout is not None else (shard_size or DEFAULT_SHARD_SIZE)
    if layout is not None and shard_size is not None and shard_size != layout.shard_size:
        logger.warning(
            "store %s has %d samples/shard; using that, not %d", store_url, size, shard_size
        )
    selected = source.select(parts)
    by_shard: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    owner: dict[int, str] = {}
    total = 0
    for part in selected + _neighbours(source, selected):
        is_selected = part in selected
        for sid in part.sample_ids:
            if not 0 <= sid < facts.NUM_SAMPLES:
                logger.warning("%s: sample id %d is out of range; skipped", part.url, sid)
                continue
            if sid in owner:
                if owner[sid] != part.name:
                    logger.warning(
                        "sample %d is in %s and %s; using %s",
                        sid,
                        owner[sid],
                        part.name,
                        owner[sid],
                    )
                continue
            shard = sid // size
            if not is_selected and shard not in by_shard:
                continue  # a neighbour's own shards are not part of this run
            owner[sid] = part.name
            by_shard[shard][part.name].append(sid)
            total += is_selected
    committed = layout.committed_shards() if layout is not None else set()
    jobs: list[ShardJob] = []
    skipped: list[int] = []
    for shard in sorted(by_shard):
        sources = tuple((name, tuple(ids)) for name, ids in by_shard[shard].items())
        job = ShardJob(shard=shard, sources=sources)
        if shard in committed and layout is not None:
            if len(sources) == 1 or set(job.sample_ids) <= _committed_ids(layout, shard):
                skipped.append(shard)
                continue
            logger.info("shard %d spans parts and lacks samples now present; rewriting it", shard)
        jobs.append(job)
    return ConversionPlan(
        source_url=source.url,
        store_url=store_url,
        profile=layout.profile if layout is not None else profile,
        shard_size=size,
        parts=tuple(p.name for p in selected),
        jobs=tuple(jobs),
        committed=tuple(skipped),
        samples_in_parts=total,
    )


def detect_dtypes(
    source: Source, parts: list[str] | None = None, tries: int = 20
) -> dict[str, np.dtype]:
    """Pixel types of depth and normal, from the first decodable sample of the first part."""
    for part in source.select(parts):
        ids = part.sample_ids[:tries]
        for sid, files in part.read_samples(ids):
            try:
                sample = decode_sample(sid, files)
            except SampleDecodeError as exc:
                logger.info("cannot take pixel types from sample %d: %s", sid, exc)
                continue
            return {"depth": sample.depth.dtype, "normal": sample.normal.dtype}
    raise StoreError(
        f"no decodable sample among the first {tries} of the selected parts of {source.url}; "
        "cannot tell the EXR pixel type: check the source with 'david-data verify'",
        path=source.url,
    )
