"""Progress reporting for long jobs, decoupled from the terminal.

Library code reports through a :class:`Progress` (``task(...)`` returns a handle with
``advance`` and ``update``). The CLI passes a rich bar; ``--no-progress`` and
non-interactive runs get :class:`LogProgress`, which writes a plain log line per task
at most every few seconds and when a task finishes. Handles are thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

logger = logging.getLogger(__name__)


class TaskHandle(Protocol):
    def advance(self, amount: float = 1) -> None: ...
    def update(self, *, description: str | None = None, total: float | None = None) -> None: ...
    def finish(self, status: str = "done") -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: float | None = None, unit: str = "items") -> TaskHandle: ...


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
    if unit != "bytes":
        return f"{amount:,.0f} {unit}"
    for suffix in ("B", "KB", "MB", "GB", "TB"):
        if abs(amount) < 1000 or suffix == "TB":
            return f"{amount:,.1f} {suffix}" if suffix != "B" else f"{amount:,.0f} B"
        amount /= 1000
    return f"{amount} B"


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
    def __init__(self, owner: RichProgress, task_id: int) -> None:
        self._owner, self._id = owner, task_id

    def advance(self, amount: float = 1) -> None:
        self._owner.bar.advance(self._id, amount)  # type: ignore[arg-type]

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        self._owner.bar.update(self._id, description=description, total=total)  # type: ignore[arg-type]

    def finish(self, status: str = "done") -> None:
        task = self._owner.bar.tasks[[t.id for t in self._owner.bar.tasks].index(self._id)]  # type: ignore[comparison-overlap]
        self._owner.bar.update(self._id, description=f"{task.description} [{status}]")  # type: ignore[arg-type]


class RichProgress:
    """A live terminal bar (bytes or items, rate, ETA). Use as a context manager."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as _Bar

        self._byte_columns = (DownloadColumn(), TransferSpeedColumn())
        self._item_columns = (MofNCompleteColumn(),)
        self.bar = _Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._units: dict[int, str] = {}

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def task(self, description: str, total: float | None = None, unit: str = "items") -> TaskHandle:
        task_id = self.bar.add_task(description, total=total, amount="")
        self._units[int(task_id)] = unit
        handle = _RichHandle(self, task_id)  # type: ignore[arg-type]
        return _AmountHandle(handle, self, int(task_id), unit)


class _AmountHandle:
    """Keeps the human-readable amount column of a rich task up to date."""

    def __init__(self, inner: _RichHandle, owner: RichProgress, task_id: int, unit: str) -> None:
        self._inner, self._owner, self._id, self._unit = inner, owner, task_id, unit
        self._done = 0.0
        self._total: float | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        total = f" / {_human(self._total, self._unit)}" if self._total else ""
        self._owner.bar.update(self._id, amount=f"{_human(self._done, self._unit)}{total}")  # type: ignore[arg-type]

    def advance(self, amount: float = 1) -> None:
        with self._lock:
            self._done += amount
            self._inner.advance(amount)
            self._refresh()

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        with self._lock:
            if total is not None:
                self._total = total
            self._inner.update(description=description, total=total)
            self._refresh()

    def finish(self, status: str = "done") -> None:
        self._inner.finish(status)
