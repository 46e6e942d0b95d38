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

The kernel may deliver a process's signal to any of its threads, and Python runs a
signal's handler only when the main thread next runs Python code: a main thread that
waits on a lock (a planning read in a pool thread, stalled) would not see the signal
until that wait ends, which may be never. So the stop is not asked for by the handler but
by a thread of ours that reads the signals from Python's wakeup file descriptor
(:func:`signal.set_wakeup_fd`), which the C-level handler writes to in whatever thread
it runs: the stop flag is set and the planning reads are woken at once, and the waiting
main thread wakes with them.
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


_WATCHED = (signal.SIGINT, signal.SIGTERM)
_watch_depth = 0
_watch_state: tuple[int, int, int, threading.Thread] | None = None
"""While a ``handle_signals`` region lasts in the main thread: the wakeup pipe's read and
write ends, the wakeup fd it replaced, and the thread that reads the pipe."""


def _on_signal(signum: int) -> None:
    """What a SIGINT/SIGTERM does, on the watching thread: ask for the stop (the first),
    or quit at once (another, or one after a stop was already asked for)."""
    if _STOP.is_set():
        sys.stderr.write("\ninterrupted again: stopping now\n")
        sys.stderr.flush()
        kill_children()
        os._exit(130)
    name = signal.Signals(signum).name
    if _interrupt and not _units_running:
        sys.stderr.write(f"\n{name}: stopping\n")
    else:
        sys.stderr.write(
            f"\n{name}: stopping after the running work units checkpoint "
            "(press Ctrl-C again to quit at once)\n"
        )
    sys.stderr.flush()
    request_stop()


def _watch(read_fd: int, forward_fd: int) -> None:
    """Read the signal numbers Python's C-level handler writes to the wakeup pipe (one
    byte per signal, in whichever thread it ran) until the pipe's write end closes;
    forward each byte to the wakeup fd this one replaced, if any."""
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return
        if forward_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(forward_fd, data)
        for signum in data:
            if signum in _WATCHED:
                _on_signal(signum)


def _start_watching() -> None:
    global _watch_depth, _watch_state
    _watch_depth += 1
    if _watch_depth > 1:
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    forward_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(
        target=_watch, args=(read_fd, forward_fd), name="david-data-signals", daemon=True
    )
    watcher.start()
    _watch_state = (read_fd, write_fd, forward_fd, watcher)


def _stop_watching() -> None:
    global _watch_depth, _watch_state
    _watch_depth -= 1
    if _watch_depth or _watch_state is None:
        return
    read_fd, write_fd, forward_fd, watcher = _watch_state
    _watch_state = None
    signal.set_wakeup_fd(forward_fd)
    os.close(write_fd)  # the watcher reads what is left, then the end of the pipe
    watcher.join(timeout=5)
    os.close(read_fd)


def _forget_watching() -> None:
    """A forked child has no watching thread: it drops the parent's pipe and wakeup fd."""
    global _watch_depth, _watch_state
    if _watch_state is not None:
        read_fd, write_fd, forward_fd, _ = _watch_state
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(forward_fd)
        for fd in (read_fd, write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
    _watch_depth, _watch_state = 0, None


os.register_at_fork(after_in_child=_forget_watching)


def _handler(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler (main thread): the watching thread does the stopping; in
    a command's set-up this also ends what the main thread is doing."""
    if _interrupt and not _units_running:
        _STOP.wait(1.0)  # the watching thread asks for the stop within moments
        raise KeyboardInterrupt


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
    previous = {s: signal.getsignal(s) for s in _WATCHED}
    outer = _interrupt
    _interrupt = interrupt
    _start_watching()  # first: a signal that finds our handler always reaches the watcher
    for sig in previous:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
        _interrupt = outer
        for sig, old in previous.items():
            signal.signal(sig, old)
        _stop_watching()


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
