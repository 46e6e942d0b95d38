"""What every flow shares: the Prefect executor, and publishing a job's report.

A flow is thin: it builds the job's settings from its (plain, deployable) parameters
(:func:`job_settings`: its parameters are the job's options, see :mod:`david_data.jobs`),
plans with the library, runs the library's engine on :func:`flow_executor`, and calls
:func:`publish`. Units become Prefect tasks named after their part, shard group or
batch (:class:`PrefectExecutor`); with ``dask_address`` they run on that Dask cluster
instead, as plain functions (Dask workers never start a Prefect server).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar, cast

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.exceptions import TerminationSignal
from prefect.states import Failed
from prefect.types import SecretDict

from david_data.engine import Executor, JobReport, handle_signals, make_executor, stop_requested
from david_data.errors import DavidDataError, JobInterrupted
from david_data.jobs import Job, flow_arguments, options_from_flow

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


def job_settings(settings: Callable[..., S], parameters: dict[str, Any]) -> S:
    """A job's settings from its flow's parameters (the flow's ``locals()``)."""
    return settings(**options_from_flow(parameters))


def flow_parameters(
    flow_fn: Any, options: dict[str, Any], *, dask_address: str | None, progress: bool
) -> dict[str, Any]:
    """The arguments to call a job's flow (``flow_fn``) with: see :func:`flow_arguments`."""
    accepted = inspect.signature(flow_fn.fn).parameters
    return flow_arguments(
        options, accepted, secret=SecretDict, dask_address=dask_address, progress=progress
    )


def stops_cleanly(body: Callable[P, T]) -> Callable[P, T]:
    """A job flow's body (put it under ``@flow``) with the engine's two-step SIGINT/SIGTERM
    handling for its whole length, planning included.

    Prefect turns SIGTERM during a flow run into an exception that crashes the run ("Crash
    detected!"), and a KeyboardInterrupt crashes it too; with ours a stop while the job
    plans wakes the planning reads (:func:`david_data.engine.signals.on_stop`), and the
    error they end with ends the run Failed, "interrupted", with no traceback; a stop once
    units run lets them checkpoint (:func:`publish` then ends the run Failed, interrupted).
    Same from a terminal, a pod stop or a Prefect cancel."""

    @functools.wraps(body)
    def stopping(*args: P.args, **kwargs: P.kwargs) -> T:
        with handle_signals(reset=False):
            try:
                return body(*args, **kwargs)
            except DavidDataError as exc:
                if stop_requested():
                    return _interrupted(exc)
                # A refused setting or an unreachable source (found while planning): the
                # run ends Failed with the message, no traceback; a caller (the CLI, a
                # parent flow) gets the error itself back (report_of_state raises it).
                return cast(T, Failed(message=str(exc), data=exc))
            except Exception as exc:
                if not stop_requested():
                    raise
                return _interrupted(exc)

    def _interrupted(exc: Exception) -> T:
        message = f"interrupted before any work unit ran ({exc})"
        # A flow returning a State ends in it; to callers it stands where the report
        # would (report_of_state raises its JobInterrupted), as in publish.
        return cast(T, Failed(message=message, data=JobInterrupted(message)))

    # Prefect validates parameters by the signature, resolving names in the wrapper's
    # module: give it the body's, with the annotations already resolved.
    stopping.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    return stopping

R = TypeVar("R", bound=JobReport)
PlanT = TypeVar("PlanT")


def _call(fn: Callable[..., Any], inner: Executor | None, args: tuple[Any, ...]) -> Any:
    if inner is None:
        return fn(*args)
    return inner.submit(fn, *args).result()


class PrefectExecutor:
    """Each unit a Prefect task of the current flow run (named by its label), at most
    ``workers`` at once. With ``inner`` (e.g. a process pool for CPU-bound units) the task
    hands its unit to ``inner`` and waits: Prefect shows and retries it, ``inner`` runs it."""

    prefetch = 1  # Prefect's own thread pool would start anything submitted

    def __init__(self, inner: Executor | None, workers: int, *, retries: int = 0) -> None:
        self.inner = inner
        self.workers = inner.workers if inner is not None else max(1, workers)
        self.in_process = inner.in_process if inner is not None else True
        where = inner.description if inner is not None else f"{self.workers} thread(s)"
        self.description = f"Prefect tasks on {where}"
        self._task = task(cache_policy=NO_CACHE, retries=retries, retry_delay_seconds=2)(_call)

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str = "") -> cf.Future[Any]:
        named = self._task.with_options(task_run_name=label or getattr(fn, "__name__", "unit"))
        prefect_future = named.submit(fn, self.inner, args)
        future: cf.Future[Any] = cf.Future()
        future.set_running_or_notify_cancel()

        def done(pf: Any) -> None:
            try:
                future.set_result(pf.result(raise_on_failure=True))
            except BaseException as exc:  # noqa: BLE001 - hand it to the engine
                future.set_exception(exc)

        prefect_future.add_done_callback(done)
        return future

    def run_everywhere(self, fn: Callable[..., Any], /, *args: Any) -> list[Any]:
        return self.inner.run_everywhere(fn, *args) if self.inner is not None else [fn(*args)]

    def close(self, *, wait: bool = True) -> None:
        if self.inner is not None:
            self.inner.close(wait=wait)


@contextlib.contextmanager
def flow_executor(
    job: Job[Any, PlanT, Any], plan: PlanT, *, dask_address: str | None = None, retries: int = 0
) -> Iterator[Executor]:
    """The executor a flow runs ``plan``'s units on: the Dask cluster at ``dask_address``,
    or Prefect tasks (over a process pool when the job's units need processes), as many at
    once as the job's workers. Signals: see :func:`stops_cleanly`."""
    address = dask_address if job.dask else None
    with _executor(job.executor, job.workers(plan), address, retries) as ex:
        yield ex


@contextlib.contextmanager
def _executor(
    kind: str, workers: int, dask_address: str | None, retries: int
) -> Iterator[Executor]:
    if dask_address:
        with make_executor(kind, workers, dask_address=dask_address) as executor:
            yield executor
        return
    if kind == "processes" and workers > 1:
        with make_executor(kind, workers) as inner:
            yield PrefectExecutor(inner, workers, retries=retries)
        return
    yield PrefectExecutor(None, workers, retries=retries)


def publish(report: R, *, key: str, description: str) -> R:
    """Publish the report's markdown as an artifact; end the run Failed (the summary as its
    message) when any item failed or the run was interrupted, else Completed."""
    create_markdown_artifact(markdown=report.markdown(), key=key, description=description)
    if report.failure_count or report.interrupted:
        # A flow that returns a State ends in it, with ``data`` as its result: to a caller
        # (``state.result()``) the flow's value is still the report.
        return cast(R, Failed(message=report.summary(), data=report))
    return report


def report_of_state(state: State[R]) -> R:
    """The report a flow run returned, whether it ended Completed or Failed. A run that
    raised re-raises its error; one a signal ended before it could report raises
    :class:`~david_data.errors.JobInterrupted` (the CLI then says "interrupted" and exits
    130; a parent flow ends Failed, interrupted, see :func:`stops_cleanly`)."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        if isinstance(result, TerminationSignal | JobInterrupted) or (
            state.is_crashed() and stop_requested()
        ):
            raise JobInterrupted(f"flow run ended {state.type.value}: {state.message}") from result
        raise result
    return result
