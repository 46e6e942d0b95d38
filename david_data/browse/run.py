"""The browse job: draw every chosen sample's pictures through an executor, then write the
static site (:mod:`.site`).

A job of the engine (:mod:`david_data.engine`): :func:`~.plan.plan_browse` (settings ->
plain plan), then :func:`run_browse` (plan, executor -> report), each unit a group of
samples (:func:`draw_pictures`), on processes of this machine or a Dask cluster. A
picture already in the report folder is kept (a rerun draws only what is missing); a
sample whose pictures cannot be drawn is named in the report and shown without them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Executor, make_executor, run_units
from ..engine.report import first_lines, markdown_table
from ..engine.signals import stop_requested
from ..errors import ConfigError
from ..progress import NullProgress, Progress
from ..store import SynthHumanStore, open_store
from .images import (
    GROUND_TRUTH,
    SIZES,
    encode_picture,
    ground_truth_pictures,
    image_name,
    prediction_pictures,
    run_key,
    write_atomic,
)
from .plan import BrowsePlan, BrowseSettings, PictureUnit, RunRef, plan_browse
from .site import write_site

logger = logging.getLogger(__name__)

OUT_OF_PROCESS_GRACE = 2.0
INTERRUPTED = "not drawn: the run was interrupted"


@dataclass(frozen=True, kw_only=True)
class PictureResult:
    """What a unit did: samples whose pictures are all there, pictures drawn and kept,
    and samples it could not draw (with why)."""

    done: tuple[int, ...] = ()
    drawn: int = 0
    kept: int = 0
    failed: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class BrowseReport:
    """The report folder, what was drawn, and the samples without pictures (implements
    :class:`david_data.engine.JobReport`)."""

    index: str
    """Path of the report's ``index.html``."""
    samples: int
    runs: tuple[str, ...] = ()
    drawn: int = 0
    kept: int = 0
    failed: tuple[tuple[int, str], ...] = field(default=())
    interrupted: bool = False

    @property
    def failure_count(self) -> int:
        return len(self.failed)

    def summary(self) -> str:
        runs = f" and {len(self.runs)} run(s) ({', '.join(self.runs)})" if self.runs else ""
        lines = [
            f"browse: {self.samples} samples{runs}; {self.drawn} pictures drawn, "
            f"{self.kept} kept from an earlier run, {len(self.failed)} sample(s) without pictures"
        ]
        lines += first_lines(self.failed, 50, lambda f: f"  sample {f[0]}: {f[1]}")
        if self.interrupted:
            lines.append("interrupted: the page was not written; rerun the same command")
        else:
            lines.append(f"open {self.index}")
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = markdown_table(
            (
                "samples",
                "runs",
                "pictures drawn",
                "kept",
                "samples without pictures",
                "interrupted",
            ),
            [
                (
                    self.samples,
                    ", ".join(self.runs) or "-",
                    self.drawn,
                    self.kept,
                    len(self.failed),
                    "yes" if self.interrupted else "no",
                )
            ],
        )
        rows += [f"- sample {sid}: {why.replace('|', '/')}" for sid, why in self.failed[:200]]
        return f"# Browse report\n\n`{self.index}`\n\n" + "\n".join(rows) + "\n"


def _pictures_of(sample_id: int, runs: tuple[RunRef, ...]) -> list[str]:
    keys = list(GROUND_TRUTH)
    for run in runs:
        prefix = run_key(run.name, run.model_sha256)
        keys += [f"{prefix}.{f}{suffix}" for f in run.fields for suffix in ("", "-err")]
    return [image_name(sample_id, key, size) for key in keys for size in SIZES]


def draw_pictures(unit: PictureUnit) -> PictureResult:
    """The work unit: draw the pictures of the unit's samples that the report folder lacks
    (module level, so it runs anywhere). A stop request leaves the rest undrawn."""
    out = Path(unit.output)
    store = open_store(unit.store_url, unit.storage_options)
    done: list[int] = []
    failed: list[tuple[int, str]] = []
    drawn = kept = 0
    for sid, runs in zip(unit.sample_ids, unit.runs, strict=True):
        if stop_requested():
            break
        names = _pictures_of(sid, runs)
        missing = [n for n in names if not _present(out / n)]
        kept += len(names) - len(missing)
        if not missing:
            done.append(sid)
            continue
        try:
            pictures = _draw(store, sid, runs)
            for key, image in pictures.items():
                for size in SIZES:
                    name = image_name(sid, key, size)
                    if name in missing:
                        write_atomic(out / name, encode_picture(image, size))
                        drawn += 1
        except Exception as exc:  # noqa: BLE001 - a sample's failure is data for the report
            logger.debug("sample %d: pictures failed", sid, exc_info=True)
            failed.append((sid, f"{type(exc).__name__}: {exc}"))
            continue
        done.append(sid)
    return PictureResult(done=tuple(done), drawn=drawn, kept=kept, failed=tuple(failed))


def _present(path: Path) -> bool:
    """A picture written before (never an empty file a crash might have left)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _draw(store: SynthHumanStore, sid: int, runs: tuple[RunRef, ...]) -> dict[str, np.ndarray]:
    sample = store.sample(sid, runs=[run.name for run in runs])
    pictures = ground_truth_pictures(sample)
    for run in runs:
        prefix = run_key(run.name, run.model_sha256)
        for f in run.fields:
            shown, error = prediction_pictures(sample, f, sample[f"{run.name}/{f}"])
            pictures[f"{prefix}.{f}"] = shown
            pictures[f"{prefix}.{f}-err"] = error
    return pictures


def _unit_failed(unit: PictureUnit, exc: BaseException) -> PictureResult:
    """A unit that raised (the store unreadable, a worker lost twice): its samples have no
    pictures, with the reason."""
    reason = f"{type(exc).__name__}: {exc}"
    return PictureResult(failed=tuple((sid, reason) for sid in unit.sample_ids))


def _output_unseen(output: str) -> list[str]:
    """The report folder when this machine cannot see it (run on every worker)."""
    return [] if Path(output).is_dir() else [output]


def run_browse(
    plan: BrowsePlan, executor: Executor, *, progress: Progress | None = None
) -> BrowseReport:
    """Draw the plan's pictures on ``executor``, then write the site; a stop request
    leaves the page unwritten (a rerun keeps the pictures drawn)."""
    out = Path(plan.settings.output)
    out.mkdir(parents=True, exist_ok=True)
    if not executor.in_process and plan.units:
        unseen = sorted(
            {p for found in executor.run_everywhere(_output_unseen, str(out)) for p in found}
        )
        if unseen:
            raise ConfigError(
                f"the workers of {executor.description} cannot see the report folder {out}; "
                "give a folder every worker reaches (a shared folder)"
            )
    logger.info(
        "browse: %d samples in %d units on %s", plan.samples, len(plan.units), executor.description
    )
    handle = (progress or NullProgress()).task("drawing", total=plan.samples, unit="samples")
    outcome = run_units(
        executor,
        draw_pictures,
        plan.units,
        label=lambda unit: unit.label,
        on_error=_unit_failed,
        on_result=lambda unit, result: handle.advance(len(result.done) + len(result.failed)),
        grace=8.0 if executor.in_process else OUT_OF_PROCESS_GRACE,
    )
    drawn_ids = {sid for r in outcome.results for sid in r.done}
    failed = sorted(item for r in outcome.results for item in r.failed)
    interrupted = outcome.interrupted or len(drawn_ids) + len(failed) < plan.samples
    handle.finish("interrupted" if interrupted else "failures" if failed else "ok")
    index = out / "index.html"
    if not interrupted:
        write_site(plan, out, drawn_ids)
    return BrowseReport(
        index=str(index),
        samples=plan.samples,
        runs=tuple(r.name for r in plan.runs),
        drawn=sum(r.drawn for r in outcome.results),
        kept=sum(r.kept for r in outcome.results),
        failed=tuple(failed),
        interrupted=interrupted,
    )


def browse(
    store_url: str,
    output: str,
    *,
    runs: list[str] | None = None,
    query: str | None = None,
    workers: int = 1,
    storage_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BrowseReport:
    """Plan and run a browse report of ``store_url`` into the folder ``output`` on
    ``workers`` local processes (1: in this process); open its ``index.html``."""
    plan = plan_browse(
        BrowseSettings(
            store_url=store_url,
            output=output,
            runs=tuple(runs) if runs is not None else None,
            query=query,
            workers=workers,
            storage_options=storage_options,
        )
    )
    with make_executor("processes", plan.settings.workers) as executor:
        return run_browse(plan, executor, progress=progress)
