"""Where work units run: small, interchangeable executors with one shape.

Every executor offers ``submit(fn, *args, label=...) -> concurrent.futures.Future``,
``run_everywhere(fn, *args)`` (a check on every machine that will run units, e.g. that a
model file is readable there) and ``close(wait=...)``; ``workers`` says how many units
run at once and ``in_process`` whether units share this process (so callbacks and the
stop flag reach them).

- :class:`ThreadExecutor`: threads of this process (I/O-bound units: mirror, infer).
- :class:`ProcessExecutor`: spawned processes of this machine (CPU-bound: convert).
- :class:`DaskExecutor`: an existing Dask cluster, through ``distributed``. Units and
  their results pickle; Dask re-runs the units of a worker that dies.
- the Prefect executor lives in ``david_data/flows/_executor.py`` (the library never imports Prefect).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from .._extras import require
from ..errors import ConfigError
from .signals import ignore_interrupts_in_worker

logger = logging.getLogger(__name__)


@runtime_checkable
class Executor(Protocol):
    """The shape every executor has (``concurrent.futures`` plus a label and a check)."""

    workers: int
    in_process: bool
    description: str

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str = "") -> cf.Future[Any]: ...

    def run_everywhere(self, fn: Callable[..., Any], /, *args: Any) -> list[Any]: ...

    def close(self, *, wait: bool = True) -> None: ...


class ThreadExecutor:
    """Units on ``workers`` threads of this process."""

    in_process = True

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self.description = f"{self.workers} thread(s)"
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="david-data")

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str = "") -> cf.Future[Any]:
        return self._pool.submit(fn, *args)

    def run_everywhere(self, fn: Callable[..., Any], /, *args: Any) -> list[Any]:
        return [fn(*args)]

    def close(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


class ProcessExecutor:
    """Units on ``workers`` spawned processes of this machine (one process: this one).

    ``spawn``, not ``fork``: forking a process that runs threads (fsspec's event loop,
    Prefect) can deadlock. Workers ignore SIGINT: a terminal sends Ctrl-C to the whole
    process group, and stopping is the parent's decision (it kills them on close)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self.in_process = self.workers == 1
        self.description = f"{self.workers} process(es)"
        if self.in_process:
            self._pool: cf.Executor = cf.ThreadPoolExecutor(1, thread_name_prefix="david-data")
        else:
            self._pool = cf.ProcessPoolExecutor(
                self.workers,
                mp_context=_spawn_context(),
                initializer=ignore_interrupts_in_worker,
            )

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str = "") -> cf.Future[Any]:
        return self._pool.submit(fn, *args)

    def run_everywhere(self, fn: Callable[..., Any], /, *args: Any) -> list[Any]:
        return [fn(*args)]

    def close(self, *, wait: bool = True) -> None:
        if not wait and isinstance(self._pool, cf.ProcessPoolExecutor):
            # Units not committed yet are simply redone by the next run.
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
        self._pool.shutdown(wait=wait, cancel_futures=True)


class DaskExecutor:
    """Units on an existing Dask cluster (``tcp://HOST:PORT``), through ``distributed``.

    Each unit becomes one Dask task keyed by its label. Results come back as futures
    (progress is counted here, on the client). A worker that dies has its units re-run
    elsewhere by the scheduler. Closing without waiting cancels what has not finished."""

    in_process = False

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        require("dask", "a Dask cluster (--dask-address)")
        from distributed import Client

        _check_reachable(address)
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address}: {exc}; start it with "
                "'dask scheduler' (and 'dask worker ADDRESS') or check --dask-address"
            ) from exc
        info = self._client.scheduler_info()
        workers = info.get("workers", {})
        if not workers:
            self._client.close()
            raise ConfigError(
                f"the Dask scheduler at {address} has no workers; start some with "
                f"'dask worker {address}'"
            )
        self.workers = sum(int(w.get("nthreads", 1)) for w in workers.values())
        self.description = (
            f"Dask cluster {address} ({len(workers)} worker(s), {self.workers} thread(s))"
        )
        self._futures: list[Any] = []
        self._counter = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str = "") -> cf.Future[Any]:
        self._counter += 1
        key = f"{(label or getattr(fn, '__name__', 'unit')).replace(' ', '_')}-{os.getpid()}-{self._counter}"
        dask_future = self._client.submit(fn, *args, key=key, pure=False, retries=1)
        self._futures.append(dask_future)
        future: cf.Future[Any] = cf.Future()
        future.set_running_or_notify_cancel()

        def done(f: Any) -> None:
            if future.done():
                return
            try:
                if f.cancelled():
                    future.set_exception(cf.CancelledError(key))
                elif f.status == "error":
                    future.set_exception(f.exception())
                else:
                    future.set_result(f.result())
            except BaseException as exc:  # noqa: BLE001 - hand it to the waiting client
                if not future.done():
                    future.set_exception(exc)

        dask_future.add_done_callback(done)
        return future

    def run_everywhere(self, fn: Callable[..., Any], /, *args: Any) -> list[Any]:
        return list(self._client.run(fn, *args).values())

    def close(self, *, wait: bool = True) -> None:
        with contextlib.suppress(Exception):
            if not wait:
                self._client.cancel([f for f in self._futures if not f.done()])
            self._client.close()


def _check_reachable(address: str) -> None:
    """Fail at once (not after the client's timeout) when nothing listens at ``address``."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
        raise ConfigError(
            f"--dask-address {address!r} is not a scheduler address; expected tcp://HOST:PORT "
            "(what 'dask scheduler' prints)"
        )
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address}: {exc.strerror or exc}; start it "
            "with 'dask scheduler' (and 'dask worker ADDRESS') or check --dask-address"
        ) from exc


def local_executor(kind: str, workers: int) -> ThreadExecutor | ProcessExecutor:
    """``threads`` or ``processes`` of this machine."""
    if kind == "threads":
        return ThreadExecutor(workers)
    if kind == "processes":
        return ProcessExecutor(workers)
    raise ConfigError(f"unknown executor kind {kind!r}; expected 'threads' or 'processes'")


@contextlib.contextmanager
def make_executor(
    kind: str, workers: int, *, dask_address: str | None = None
) -> Iterator[Executor]:
    """The executor a job runs on: Dask when ``dask_address`` is given, else local
    ``kind`` (``threads`` or ``processes``). Closed on exit; on an exception (or a stop
    request) without waiting for units still running."""
    from .signals import stop_requested

    executor: Executor = (
        DaskExecutor(dask_address) if dask_address else local_executor(kind, workers)
    )
    clean = False
    try:
        yield executor
        clean = not stop_requested()
    finally:
        executor.close(wait=clean)


def _spawn_context() -> Any:
    """The spawn start method's context (multiprocessing loads only for processes)."""
    import multiprocessing

    return multiprocessing.get_context("spawn")
