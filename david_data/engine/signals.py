"""Stopping a job cleanly on SIGINT/SIGTERM.

The first signal sets a process-wide stop flag: the engine (:func:`.run.run_units`) stops
submitting units and cancels those not started; units running in this process poll
:func:`stop_requested` at safe points (a mirror between chunks, inference between images)
and return early with their progress checkpointed. The job then returns a report marked
``interrupted`` and the CLI prints it and exits 130. A second signal exits at once,
taking any worker processes down with it.

Before any unit runs (a job's planning: HEADs, zip directories read over the network)
there is nothing to checkpoint, so a stop also wakes whatever planning waits on: the
callbacks registered with :func:`on_stop` run (the HTTP client shuts its sockets, so a
read from a stalled host returns at once), and under ``handle_signals(interrupt=True)``
(a command's set-up) the signal also raises :class:`KeyboardInterrupt` in the main thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

logger = logging.getLogger(__name__)

_STOP = threading.Event()
_ON_STOP: list[Callable[[], None]] = []
_units_running = 0
_interrupt = False
"""Whether the first signal raises KeyboardInterrupt (the innermost handle_signals says)."""


def stop_requested() -> bool:
    """True once a stop was asked for (first Ctrl-C or SIGTERM, or :func:`request_stop`)."""
    return _STOP.is_set()


def request_stop() -> None:
    """Ask every running job of this process to stop (what the first signal does)."""
    _STOP.set()
    if not _units_running:
        for callback in list(_ON_STOP):
            with contextlib.suppress(Exception):
                callback()


def on_stop(callback: Callable[[], None]) -> None:
    """Call ``callback`` when a stop is asked for while no work unit runs (planning): it
    should wake what may be blocked (close sockets), quickly and from any thread."""
    _ON_STOP.append(callback)


@contextlib.contextmanager
def units_running() -> Iterator[None]:
    """Mark the engine's run: while it lasts, a stop leaves running units to checkpoint
    rather than waking them through the :func:`on_stop` callbacks."""
    global _units_running
    _units_running += 1
    try:
        yield
    finally:
        _units_running -= 1


def reset_stop() -> None:
    """Clear the stop flag (before a new job in the same process)."""
    _STOP.clear()


def kill_children() -> None:
    """Terminate this process's worker processes (process pools, spawned helpers)."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:  # never imported: no process was started through it
        return
    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.kill()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _STOP.is_set():
        sys.stderr.write("\ninterrupted again: stopping now\n")
        sys.stderr.flush()
        kill_children()
        os._exit(130)
    name = signal.Signals(signum).name
    if _interrupt and not _units_running:
        sys.stderr.write(f"\n{name}: stopping\n")
        sys.stderr.flush()
        request_stop()
        raise KeyboardInterrupt
    sys.stderr.write(
        f"\n{name}: stopping after the running work units checkpoint "
        "(press Ctrl-C again to quit at once)\n"
    )
    sys.stderr.flush()
    request_stop()


@contextlib.contextmanager
def handle_signals(*, reset: bool = True, interrupt: bool = False) -> Iterator[None]:
    """Install the two-step SIGINT/SIGTERM handling for the duration of a job.

    Only the main thread can install handlers; elsewhere (a Prefect worker thread) this
    is a no-op and the host process's handling applies. ``reset=False`` keeps a stop
    already asked for (a flow run inside a command that handles signals already).
    ``interrupt=True`` (a command's set-up and planning): a first signal that comes while
    no unit runs also raises KeyboardInterrupt in the main thread."""
    global _interrupt
    if reset:
        reset_stop()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    outer = _interrupt
    _interrupt = interrupt
    for sig in previous:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
        _interrupt = outer
        for sig, old in previous.items():
            signal.signal(sig, old)


def ignore_interrupts_in_worker() -> None:
    """Process-pool initializer: a terminal's Ctrl-C reaches the whole process group;
    workers leave the decision to stop to the parent (which then ends them). A worker
    also ends at once when its parent dies (see :func:`die_with_parent`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()


def die_with_parent() -> None:
    """In a process started by :mod:`multiprocessing`: exit as soon as the parent dies
    (SIGKILL included), whatever this process is doing.

    Without it, pool workers of a killed job go on with the units already queued to them
    (committing shards a rerun then writes too). The parent's end of a pipe closes when it
    dies, however it dies; a daemon thread waits for that. Linux's parent-death signal is
    not used: it fires when the *thread* that started the worker ends, and a pool starts
    workers from whichever thread submits."""
    import multiprocessing.connection

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="david-data-parent-watch", daemon=True).start()
