"""The engine's driver: run work units through an executor, fold their results.

:func:`run_units` keeps at most ``max_in_flight`` units submitted (memory stays flat and
a stop has little to cancel), hands every result to ``on_result`` on the calling thread
as it arrives (progress bars, incremental commits), turns a unit that raised into a
result with ``on_error`` (the job records it and goes on), and on a stop request
(:mod:`.signals`) submits nothing more, cancels what has not started and waits up to
``grace`` seconds for running units to checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .executors import Executor
from .signals import stop_requested, units_running

if TYPE_CHECKING:
    from ..progress import TaskHandle

logger = logging.getLogger(__name__)

U = TypeVar("U")
R = TypeVar("R")
U_in = TypeVar("U_in", contravariant=True)
R_out = TypeVar("R_out", covariant=True)


@dataclass(frozen=True, kw_only=True)
class RunOutcome(Generic[U, R]):
    """What :func:`run_units` did: results in unit order, and what never ran."""

    results: list[R] = field(default_factory=list)
    """One per finished unit (``on_error``'s result for a unit that raised), in unit order."""
    not_run: list[U] = field(default_factory=list)
    """Units never started or abandoned because of a stop request."""
    interrupted: bool = False


def run_units(
    executor: Executor,
    fn: Callable[[U], R],
    units: Sequence[U],
    *,
    label: Callable[[U], str] = str,
    on_error: Callable[[U, BaseException], R],
    on_result: Callable[[U, R], None] | None = None,
    max_in_flight: int | None = None,
    grace: float = 8.0,
) -> RunOutcome[U, R]:
    """Run ``fn`` over ``units`` on ``executor``; see the module docstring."""
    limit = max_in_flight or max(executor.workers * getattr(executor, "prefetch", 2), 1)
    finished: dict[int, R] = {}
    waiting = list(enumerate(units))
    waiting.reverse()  # pop() from the end keeps submission in unit order
    running: dict[cf.Future[Any], tuple[int, U]] = {}
    interrupted = False
    stop_deadline: float | None = None

    def collect(future: cf.Future[Any], position: int, unit: U) -> None:
        try:
            result = future.result()
        except cf.CancelledError:
            return
        except BaseException as exc:  # noqa: BLE001 - a unit's failure is data for the report
            logger.debug("%s failed", label(unit), exc_info=True)
            result = on_error(unit, exc)
        finished[position] = result
        if on_result is not None:
            on_result(unit, result)

    with units_running():
        while waiting or running:
            if stop_requested() and not interrupted:
                interrupted = True
                stop_deadline = time.monotonic() + grace
                for future in list(running):
                    if future.cancel():
                        running.pop(future)
            if not interrupted:
                while waiting and len(running) < limit:
                    position, unit = waiting.pop()
                    running[executor.submit(fn, unit, label=label(unit))] = (position, unit)
            if not running:
                break
            done, _ = cf.wait(list(running), timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in done:
                collect(future, *running.pop(future))
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                logger.warning(
                    "%d unit(s) still running after %.0f s; leaving them (they are redone next run)",
                    len(running),
                    grace,
                )
                break
    not_run = [u for i, u in enumerate(units) if i not in finished]
    return RunOutcome(
        results=[finished[i] for i in sorted(finished)],
        not_run=not_run,
        interrupted=interrupted,
    )


class SampleWork(Protocol[U_in, R_out]):
    """A work unit function that can report each sample it finishes (in this process)."""

    def __call__(self, unit: U_in, on_sample: Callable[[Any], None] | None = None) -> R_out: ...


def run_units_by_sample(
    executor: Executor,
    fn: SampleWork[U, R],
    units: Sequence[U],
    *,
    bar: TaskHandle,
    samples: Callable[[R], int],
    label: Callable[[U], str],
    on_error: Callable[[U, BaseException], R],
) -> RunOutcome[U, R]:
    """:func:`run_units` with ``bar`` counting samples: in this process ``fn`` advances it
    as each sample finishes; elsewhere each unit's result advances it by ``samples(result)``."""

    def on_result(unit: U, result: R) -> None:
        if not executor.in_process:
            bar.advance(samples(result))

    work: Callable[[U], R] = (
        functools.partial(fn, on_sample=lambda _: bar.advance(1)) if executor.in_process else fn
    )
    return run_units(executor, work, units, label=label, on_error=on_error, on_result=on_result)
