"""Stopping a job cleanly on SIGINT/SIGTERM.

The first signal sets a process-wide stop flag: the engine (:func:`.run.run_units`) stops
submitting units and cancels those not started; units running in this process poll
:func:`stop_requested` at safe points (a mirror between chunks, inference between images)
and return early with their progress checkpointed. The job then returns a report marked
``interrupted`` and the CLI prints it and exits 130. A second signal exits at once,
taking any worker processes down with it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

logger = logging.getLogger(__name__)

_STOP = threading.Event()


def stop_requested() -> bool:
    """True once a stop was asked for (first Ctrl-C or SIGTERM, or :func:`request_stop`)."""
    return _STOP.is_set()


def request_stop() -> None:
    """Ask every running job of this process to stop (what the first signal does)."""
    _STOP.set()


def reset_stop() -> None:
    """Clear the stop flag (before a new job in the same process)."""
    _STOP.clear()


def kill_children() -> None:
    """Terminate this process's worker processes (process pools, spawned helpers)."""
    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.kill()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _STOP.is_set():
        sys.stderr.write("\ninterrupted again: stopping now\n")
        sys.stderr.flush()
        kill_children()
        os._exit(130)
    _STOP.set()
    name = signal.Signals(signum).name
    sys.stderr.write(
        f"\n{name}: stopping after the running work units checkpoint "
        "(press Ctrl-C again to quit at once)\n"
    )
    sys.stderr.flush()


@contextlib.contextmanager
def handle_signals(*, reset: bool = True) -> Iterator[None]:
    """Install the two-step SIGINT/SIGTERM handling for the duration of a job.

    Only the main thread can install handlers; elsewhere (a Prefect worker thread) this
    is a no-op and the host process's handling applies. ``reset=False`` keeps a stop
    already asked for (a flow run inside a command that handles signals already)."""
    if reset:
        reset_stop()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
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
