"""Run a conversion plan: shard groups through an executor, folded into a report.

:func:`run_convert` creates the store (or checks the existing one), records the part
checksums computed while planning, then runs :func:`~.write.convert_group` over the
plan's units with :func:`david_data.engine.run_units` on whatever executor it is given:
processes of this machine (decoding PNG/EXR and encoding chunks hold the GIL for much of
their time, so threads do not scale; see ``benchmarks/bench_convert.py``), a Dask
cluster, or Prefect tasks. Progress is counted here, as results arrive.
:func:`convert` plans and runs on local processes, for Python users and tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import Executor, make_executor, run_units
from ..errors import ConfigError, StoreError
from ..format.consolidated import consolidate_metadata
from ..format.layout import StoreLayout, create_store
from ..fsutil import atomic_write_bytes
from ..progress import NullProgress, Progress
from .plan import ConvertPlan, convert_settings, plan_convert
from .report import ConversionReport
from .sparse import record_selection, selection_entry
from .units import EXECUTOR, GroupResult, ShardGroup, ShardResult
from .write import convert_group, unseen_paths

logger = logging.getLogger(__name__)

OUT_OF_PROCESS_GRACE = 2.0
"""Seconds a stop waits for units running in other processes or machines: they cannot
see the stop flag, and a shard they have not committed is simply redone next run."""


def prepare_store(plan: ConvertPlan) -> StoreLayout:
    """Create the store with the plan's profile, shard size and pixel types (or open the
    existing one), record the part checksums computed while planning and, for a
    selection, the selection (:mod:`.sparse`)."""
    s = plan.settings
    try:
        layout = create_store(
            s.store_url,
            s.storage_options,
            profile=plan.profile,
            shard_size=plan.shard_size,
            dtypes={k: np.dtype(v) for k, v in plan.dtypes.items()},
            source=s.source_url,
        )
        for name, record in plan.checksum_records.items():
            atomic_write_bytes(layout.fs, layout.part_cache_path(name), record)
        entry = selection_entry(plan, layout)
        if entry is not None:
            record_selection(layout, entry)
    except OSError as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(
            f"cannot write to STORE {s.store_url} ({exc}); choose a writable location or fix "
            "its permissions",
            path=s.store_url,
        ) from exc
    return layout


def run_convert(
    plan: ConvertPlan, executor: Executor, *, progress: Progress | None = None
) -> ConversionReport:
    """Write the plan's shards on ``executor`` and report (see the module docstring)."""
    start = time.monotonic()
    if not plan.jobs:
        if plan.committed:  # a rerun with nothing left (after a run killed before its end)
            _consolidate(plan)
        return _fold(plan, [], [], interrupted=False, seconds=time.monotonic() - start)
    prepare_store(plan)
    if not executor.in_process:
        _check_workers_see_paths(plan, executor)
    units = plan.units(executor.workers)
    handle = (progress or NullProgress()).task(
        "converting", total=plan.samples_to_write, unit="samples"
    )

    def advanced(unit: ShardGroup, result: GroupResult) -> None:
        done = {r.shard for r in result.shards}
        handle.advance(sum(len(j.sample_ids) for j in unit.jobs if j.shard in done))

    outcome = run_units(
        executor,
        convert_group,
        units,
        label=lambda unit: unit.label,
        on_error=_unit_failed,
        on_result=advanced,
        grace=8.0 if executor.in_process else OUT_OF_PROCESS_GRACE,
    )
    results = [r for group in outcome.results for r in group.shards]
    not_run = [j.shard for u in outcome.not_run for j in u.jobs]
    not_run += [s for group in outcome.results for s in group.not_done]
    failed = any(r.error or r.failures for r in results)
    handle.finish("interrupted" if outcome.interrupted else "with failures" if failed else "done")
    _consolidate(plan)
    return _fold(
        plan, results, not_run, interrupted=outcome.interrupted, seconds=time.monotonic() - start
    )


def _consolidate(plan: ConvertPlan) -> None:
    """One file with every row, so readers (and the next plan) skip ~3,000 small reads;
    written at the end of every run, even one with nothing left to write, so that a run
    killed before its end leaves no store without it once rerun."""
    try:
        consolidate_metadata(plan.settings.store_url, plan.settings.storage_options)
    except OSError as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(
            f"cannot write the consolidated metadata of STORE {plan.settings.store_url} "
            f"({exc}); choose a writable location or fix its permissions",
            path=plan.settings.store_url,
        ) from exc


def _check_workers_see_paths(plan: ConvertPlan, executor: Executor) -> None:
    s = plan.settings
    found = executor.run_everywhere(
        unseen_paths, s.source_url, s.store_url, s.source_options, s.storage_options
    )
    unseen = sorted({item for missing in found for item in missing})
    if unseen:
        raise ConfigError(
            f"the workers of {executor.description} cannot see {' and '.join(unseen)}; give "
            "paths or URLs every worker reaches (a shared folder, az://...)"
        )


def _unit_failed(unit: ShardGroup, exc: BaseException) -> GroupResult:
    """A unit that raised (store unreachable, worker lost twice): its shards stay
    uncommitted and are redone by the next run."""
    reason = f"{type(exc).__name__}: {exc}"
    return GroupResult(shards=tuple(ShardResult(shard=j.shard, error=reason) for j in unit.jobs))


def _fold(
    plan: ConvertPlan,
    results: list[ShardResult],
    not_run: list[int],
    *,
    interrupted: bool,
    seconds: float,
) -> ConversionReport:
    good = sorted((r for r in results if r.error is None), key=lambda r: r.shard)
    reasons = {j.shard: j.reason for j in plan.jobs if j.reason}
    return ConversionReport(
        source_url=plan.settings.source_url,
        store_url=plan.settings.store_url,
        shards_written=len(good),
        shards_skipped=len(plan.committed),
        samples_ok=sum(r.samples_ok for r in good),
        sample_failures=tuple(f for r in good for f in r.failures),
        shard_failures=tuple(sorted((r.shard, r.error) for r in results if r.error is not None)),
        bad_parts=plan.bad_parts,
        rewritten=tuple((r.shard, reasons[r.shard]) for r in good if r.shard in reasons),
        shards_not_run=len(not_run),
        interrupted=interrupted,
        bytes_written=sum(r.bytes_written for r in good),
        seconds=seconds,
        selection=plan.selection_line,
    )


def convert(
    source_url: str,
    store_url: str,
    *,
    parts: str | Sequence[str] | None = None,
    profile: str | None = None,
    shard_size: int | None = None,
    workers: int = 1,
    retry_errors: bool = False,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
    where: str | None = None,
    ids: str | int | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ConversionReport:
    """Plan and run a conversion on ``workers`` local processes (1: in this process);
    ``where``, ``ids``, ``limit``/``seed`` select samples (the store is then sparse)."""
    plan = plan_convert(
        convert_settings(
            source_url,
            store_url,
            parts=parts,
            profile=profile,
            shard_size=shard_size,
            workers=workers,
            retry_errors=retry_errors,
            storage_options=storage_options,
            source_options=source_options,
            where=where,
            ids=ids,
            limit=limit,
            seed=seed,
        )
    )
    with make_executor(EXECUTOR, plan.settings.workers) as executor:
        return run_convert(plan, executor, progress=progress or NullProgress())
