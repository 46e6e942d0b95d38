"""Progress reporting for long jobs, decoupled from the terminal.

Library code reports through a :class:`Progress` (``task(...)`` returns a handle with
``advance`` and ``update``). The CLI passes a rich bar; ``--no-progress`` and
non-interactive runs get :class:`LogProgress`, which writes a plain log line per task
at most every few seconds and when a task finishes. Handles are thread-safe.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ._sizes import human_bytes

logger = logging.getLogger(__name__)


class TaskHandle(Protocol):
    def advance(self, amount: float = 1) -> None: ...
    def update(self, *, description: str | None = None, total: float | None = None) -> None: ...
    def finish(self, status: str = "done") -> None: ...


class Progress(Protocol):
    def task(
        self, description: str, total: float | None = None, unit: str = "items"
    ) -> TaskHandle: ...


class _NullHandle:
    def advance(self, amount: float = 1) -> None:
        pass

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        pass

    def finish(self, status: str = "done") -> None:
        pass


class NullProgress:
    """Reports nothing (library default)."""

    def task(self, description: str, total: float | None = None, unit: str = "items") -> TaskHandle:
        return _NullHandle()


def _human(amount: float, unit: str) -> str:
    return human_bytes(amount) if unit == "bytes" else f"{amount:,.0f} {unit}"


class _LogHandle:
    def __init__(self, description: str, total: float | None, unit: str, interval: float) -> None:
        self._lock = threading.Lock()
        self.description, self.total, self.unit = description, total, unit
        self.done = 0.0
        self._start = self._last = time.monotonic()
        self._interval = interval

    def _line(self, status: str | None = None) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        total = f" / {_human(self.total, self.unit)}" if self.total else ""
        tail = f" [{status}]" if status else ""
        return f"{self.description}: {_human(self.done, self.unit)}{total} ({_human(rate, self.unit)}/s){tail}"

    def advance(self, amount: float = 1) -> None:
        with self._lock:
            self.done += amount
            now = time.monotonic()
            if now - self._last >= self._interval:
                self._last = now
                logger.info(self._line())

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        with self._lock:
            if description is not None:
                self.description = description
            if total is not None:
                self.total = total

    def finish(self, status: str = "done") -> None:
        logger.info(self._line(status))


class LogProgress:
    """Plain log lines, for ``--no-progress``, CI logs and Prefect workers."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval

    def task(self, description: str, total: float | None = None, unit: str = "items") -> TaskHandle:
        return _LogHandle(description, total, unit, self.interval)


class _RichHandle:
    """One task of a :class:`RichProgress` bar, with a human-readable amount column."""

    def __init__(self, bar: Any, task_id: Any, unit: str) -> None:
        self._bar, self._id, self._unit = bar, task_id, unit
        self._description = ""
        self._done = 0.0
        self._total: float | None = None
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def _amount(self) -> str:
        total = f" / {_human(self._total, self._unit)}" if self._total else ""
        rate = self._done / max(time.monotonic() - self._start, 1e-9)
        return f"{_human(self._done, self._unit)}{total} ({_human(rate, self._unit)}/s)"

    def advance(self, amount: float = 1) -> None:
        with self._lock:
            self._done += amount
            self._bar.update(self._id, advance=amount, amount=self._amount())

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        with self._lock:
            if description is not None:
                self._description = description
            if total is not None:
                self._total = total
            self._bar.update(self._id, description=description, total=total, amount=self._amount())

    def finish(self, status: str = "done") -> None:
        with self._lock:
            self._bar.update(self._id, description=f"{self._description} [{status}]")


class RichProgress:
    """A live terminal bar (bytes or items, rate, ETA). Use as a context manager."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as _Bar

        self.bar = _Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeRemainingColumn(),
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.bar.start()
        # Log lines (Prefect's under --prefect) above the bars, not through them.
        self._restore = _log_above(self.bar.console) if self.bar.console.is_terminal else _nothing
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
        self.bar.stop()

    def task(self, description: str, total: float | None = None, unit: str = "items") -> TaskHandle:
        task_id = self.bar.add_task(description, total=total, amount="")
        handle = _RichHandle(self.bar, task_id, unit)
        handle.update(description=description, total=total)
        return handle


def _log_above(console: Any) -> Callable[[], None]:
    """Make the logging handlers that write to a terminal print through ``console``, above
    its live bars instead of into them: stream handlers, and handlers that print through
    a rich console of their own (Prefect's). Returns what puts them back."""
    from rich.file_proxy import FileProxy

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    undo: list[Callable[[], object]] = []
    for handler in {h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers}:
        own_console = getattr(handler, "console", None)
        if own_console is not None and _is_terminal(getattr(own_console, "file", None)):
            # A rich Console writes to the real terminal even when handed a FileProxy.
            undo.append(functools.partial(setattr, handler, "console", own_console))
            handler.console = _PrintAbove(console)  # type: ignore[attr-defined]  # a handler's rich console
        elif isinstance(handler, logging.StreamHandler) and _is_terminal(handler.stream):
            undo.append(functools.partial(handler.setStream, handler.stream))
            handler.setStream(FileProxy(console, handler.stream))

    def restore() -> None:
        for step in undo:
            step()

    return restore


class _PrintAbove:
    """What a rich-based log handler calls (``console.print``), printed through the live
    bars' console; log messages are plain text, never rich markup."""

    def __init__(self, console: Any) -> None:
        self._console = console

    def print(self, *objects: Any, **options: Any) -> None:
        self._console.print(*objects, **{**options, "markup": False})


def _nothing() -> None:
    pass


def _is_terminal(stream: Any) -> bool:
    """A terminal that is not already rich's proxy of one (e.g. a redirected sys.stderr)."""
    from rich.file_proxy import FileProxy

    try:
        return bool(stream is not None and not isinstance(stream, FileProxy) and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


@contextlib.contextmanager
def progress_for(enabled: bool = True) -> Iterator[Progress]:
    """The progress a long job should show: a live bar when ``enabled`` and stderr is a
    terminal, plain log lines otherwise (``--no-progress``, CI logs, Prefect workers)."""
    if enabled and sys.stderr.isatty():
        with RichProgress() as bars:
            yield bars
    else:
        yield LogProgress()
