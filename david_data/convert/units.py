"""The plain data a conversion work unit carries and returns (picklable: units travel to
process pools and Dask workers). The unit itself is :func:`.write.convert_group`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..sources.parts import PartRef, RawFiles, SampleMembers

EXECUTOR: Literal["threads", "processes"] = "processes"
"""Where this machine runs the units (CPU-bound: decoding and encoding pixels);
:mod:`david_data.jobs` reads it."""


@dataclass(frozen=True, kw_only=True)
class ShardJob:
    """One shard to write: the samples each part contributes, and ids in conflict."""

    shard: int
    sources: tuple[tuple[str, tuple[SampleMembers, ...]], ...]
    """``(part name, located samples)`` pairs; usually one part."""
    conflicts: tuple[tuple[int, str, str], ...] = ()
    """``(sample_id, part, reason)``: ids held by two parts with different content,
    recorded as errors and kept from neither."""
    reason: str = ""
    """Why a committed shard is written again (empty for a new shard)."""
    preread: tuple[tuple[int, RawFiles], ...] = field(default=(), compare=False, repr=False)
    """``(sample_id, files)`` the plan already read from an HTTP host (the sample it took
    the pixel types from), verified: the unit takes them instead of reading them again."""

    @property
    def part(self) -> str:
        """The part that owns this shard (the first one)."""
        return self.sources[0][0] if self.sources else self.conflicts[0][1]

    @property
    def parts(self) -> list[str]:
        return [name for name, _ in self.sources]

    @property
    def sample_ids(self) -> list[int]:
        ids = [s.sample_id for _, samples in self.sources for s in samples]
        return sorted(ids + [sid for sid, _, _ in self.conflicts])


@dataclass(frozen=True, kw_only=True)
class ShardGroup:
    """A work unit: a few shards of one part, with everything needed to write them."""

    store_url: str
    parts: tuple[PartRef, ...]
    jobs: tuple[ShardJob, ...]
    storage_options: dict[str, Any] | None = None
    source_options: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        first, last = self.jobs[0].shard, self.jobs[-1].shard
        span = f"shard {first}" if first == last else f"shards {first}-{last}"
        return f"{self.jobs[0].part} {span}"

    @property
    def samples(self) -> int:
        return sum(len(j.sample_ids) for j in self.jobs)


@dataclass(frozen=True, kw_only=True)
class ShardResult:
    """What writing one shard did."""

    shard: int
    samples_ok: int = 0
    failures: tuple[tuple[int, str, str], ...] = ()
    """``(sample_id, part, reason)`` of samples recorded as errors."""
    bytes_written: int = 0
    error: str | None = None
    """Set when the shard itself could not be written (it stays uncommitted)."""


@dataclass(frozen=True, kw_only=True)
class GroupResult:
    """What a unit did: its shards' results, and shards it left for the next run."""

    shards: tuple[ShardResult, ...] = ()
    not_done: tuple[int, ...] = ()
