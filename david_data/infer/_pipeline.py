"""Keep a model busy: prepare inputs ahead of it in threads, finish outputs behind it.

::

    items --> [read pool: prepare(item)] --(<= lookahead ready)--> model on stacked batches
          --> [write pool: finish(item, outputs); once all items of a model call are
               finished, commit(their results)] --(<= lookahead being finished)--> results

Both queues are bounded, so memory depends on the batch size, not on the number of
items. ``prepare``, ``finish`` and ``commit`` run in threads (OpenCV, NumPy, libdeflate
and file I/O release the GIL for their heavy parts); the model call runs in the calling
thread, so the writing of one call's outputs overlaps the next calls. ``commit`` (optional)
is a group step: once a call's items are all finished it runs on their results, in a
thread of its own, one call after the other in the order of the model calls (e.g. one
sync of their files, then their commit markers); calls waiting for it hold no arrays, so
a slow disk delays the model only once ``COMMIT_BACKLOG`` calls wait. An exception from
``prepare`` or ``finish`` fails that item only; one from the model call or from ``commit``
fails the items of that call. Results come back in input order, each recorded once its
group is committed. When ``should_stop()`` turns true no further item is prepared: the
items already under way are finished and the rest come back as None (a stop request:
they are simply done by the next run).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

Item = TypeVar("Item")
Result = TypeVar("Result")
_RELEASED = np.empty(0, np.float32)
"""Stands for a tensor the model has consumed (so a waiting group holds no input arrays)."""


@dataclass
class _Ready(Generic[Item]):
    index: int
    item: Item
    tensor: np.ndarray
    context: Any
    seconds: float


@dataclass
class _Group(Generic[Item, Result]):
    """The items of one model call between the model and their recording."""

    members: list[_Ready[Item]]
    share: float
    """Each item's share of the model call's time."""
    results: list[Any] = field(default_factory=list)
    left: int = 0
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: Future[list[Result]] = field(default_factory=Future)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.members)
        self.left = len(self.members)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, BaseException | None, float]:
    start = time.perf_counter()
    try:
        return fn(*args), None, time.perf_counter() - start
    except Exception as exc:
        return None, exc, time.perf_counter() - start


COMMIT_BACKLOG = 32
"""Model calls that may wait for their commit before the model waits (they hold no arrays:
their files are written, only their sync and markers are left). A sync writes a call's
outputs to disk (~3.4 MB per image for the multi-task model, ~35 ms at 100 MB/s): a deep
backlog lets the disk work while the model and the encoders go on."""


class ModelPipeline(Generic[Item, Result]):
    """``prepare`` -> model on stacked batches -> ``finish`` -> ``commit``; see the module
    docstring. Build one per unit of work, then :meth:`run` it once.

    ``prepare(item) -> (tensor (3, H, W), context)``; ``finish(item, outputs for this item,
    context, seconds so far) -> result``; ``fail(item, exception, seconds) -> result``;
    ``commit(results of one model call's items, in order) -> their final results``;
    ``should_stop()`` is polled before each item is prepared.
    """

    def __init__(
        self,
        *,
        prepare: Callable[[Item], tuple[np.ndarray, Any]],
        run_model: Callable[[np.ndarray], Mapping[str, np.ndarray]],
        finish: Callable[[Item, dict[str, np.ndarray], Any, float], Result],
        fail: Callable[[Item, BaseException, float], Result],
        batch_size: int,
        threads: int = 4,
        on_result: Callable[[Result], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        commit: Callable[[list[Result]], list[Result]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.prepare, self.run_model, self.finish, self.fail = prepare, run_model, finish, fail
        self.commit, self.on_result = commit, on_result
        self.should_stop = should_stop or _never
        self.batch_size, self.threads = batch_size, threads
        self.lookahead = max(2 * batch_size, threads)
        """Items prepared ahead of the model, and items being finished behind it (at most)."""
        self._results: list[Any] = []
        self._changed = threading.Condition()  # an item finished or a group settled
        self._unfinished = 0
        """Items handed to ``finish`` and not finished yet (they hold the model's outputs)."""
        self._writes: deque[_Group[Item, Result]] = deque()
        """Model calls whose results are not recorded yet, in order."""
        self._to_commit: deque[_Group[Item, Result]] = deque()
        """Model calls not committed yet, in order (the commit thread takes them from the head)."""
        self._queue_lock = threading.Lock()

    def run(self, items: Sequence[Item]) -> list[Result | None]:
        """Every item's result in input order (None: not started, a stop was requested)."""
        self._results = [None] * len(items)
        with (
            ThreadPoolExecutor(self.threads, thread_name_prefix="david-prepare") as read_pool,
            ThreadPoolExecutor(self.threads, thread_name_prefix="david-finish") as write_pool,
            ThreadPoolExecutor(1, thread_name_prefix="david-commit") as commit_pool,
        ):
            self._write_pool, self._commit_pool = write_pool, commit_pool
            group: list[_Ready[Item]] = []
            stream = _prefetch(read_pool, items, self.prepare, self.lookahead, self.should_stop)
            for index, item, (value, error, seconds) in stream:
                if error is not None:
                    self._record(index, self.fail(item, error, seconds))
                    continue
                tensor, context = value
                group.append(
                    _Ready(index=index, item=item, tensor=tensor, context=context, seconds=seconds)
                )
                if len(group) == self.batch_size:
                    self._run_group(group)
                    group = []
            if group:
                self._run_group(group)
            self._collect(0, 0)
        return self._results

    def _record(self, index: int, result: Result) -> None:
        self._results[index] = result
        if self.on_result is not None:
            self.on_result(result)

    def _wake(self, _: object = None) -> None:
        with self._changed:
            self._changed.notify_all()

    def _run_group(self, members: list[_Ready[Item]]) -> None:
        """Run the model on ``members`` (in this thread), then hand each item to ``finish``."""
        start = time.perf_counter()
        try:
            batch = (  # one image: a view, no copy (the CPU's default batch, see plan.py)
                members[0].tensor[None]
                if len(members) == 1
                else np.stack([g.tensor for g in members])
            )
            for g in members:
                g.tensor = _RELEASED
            raw = self.run_model(batch)
            del batch
        except Exception as exc:
            share = (time.perf_counter() - start) / len(members)
            for g in members:
                self._record(g.index, self.fail(g.item, exc, g.seconds + share))
            return
        group: _Group[Item, Result] = _Group(
            members=members, share=(time.perf_counter() - start) / len(members)
        )
        group.done.add_done_callback(self._wake)
        # Items being finished hold arrays: at most ``lookahead``. Calls waiting for their
        # commit hold little: up to COMMIT_BACKLOG of them before the model waits.
        self._collect(self.lookahead - len(members), COMMIT_BACKLOG)
        self._writes.append(group)
        with self._queue_lock:
            self._to_commit.append(group)
        with self._changed:
            self._unfinished += len(members)
        for j in range(len(members)):
            outputs = {task: np.asarray(value[j]) for task, value in raw.items()}
            self._write_pool.submit(self._finish_one, group, j, outputs)

    def _finish_one(
        self, group: _Group[Item, Result], j: int, outputs: dict[str, np.ndarray]
    ) -> None:
        """Finish one item (in a write thread); the last of its call submits the commit."""
        ready = group.members[j]
        try:
            so_far = ready.seconds + group.share
            value, error, seconds = _timed(self.finish, ready.item, outputs, ready.context, so_far)
            group.results[j] = (
                self.fail(ready.item, error, so_far + seconds) if error is not None else value
            )
        except BaseException as exc:  # fail() itself raised: the run must hear of it
            group.error = exc
        finally:
            ready.context = None  # the outputs are written: nothing of this item is needed
            with group.lock:
                group.left -= 1
                last = group.left == 0
            with self._changed:
                self._unfinished -= 1
                self._changed.notify_all()
            if last:  # commits run one after the other, in order, off the finishing threads
                self._commit_pool.submit(self._settle_in_order)

    def _settle_in_order(self) -> None:
        """Commit the finished calls at the head of the queue (in the commit thread): calls
        finish out of order, their commits follow the order of the model calls."""
        while True:
            with self._queue_lock:
                if not self._to_commit or self._to_commit[0].left:
                    return
                group = self._to_commit.popleft()
            self._settle(group)

    def _settle(self, group: _Group[Item, Result]) -> None:
        """Commit a call whose items are all finished (in the commit thread)."""
        try:
            if group.error is not None:
                raise group.error
            if self.commit is None:
                group.done.set_result(group.results)
                return
            start = time.perf_counter()
            try:
                committed = self.commit(group.results)
            except Exception as exc:
                share = (time.perf_counter() - start) / len(group.members)
                committed = [
                    self.fail(m.item, exc, m.seconds + group.share + share) for m in group.members
                ]
            group.done.set_result(committed)
        except BaseException as exc:  # the model thread re-raises it; never left waiting
            group.done.set_exception(exc)

    def _collect(self, limit: int, waiting: int) -> None:
        """Record settled calls, in order, until at most ``limit`` items are being finished
        and at most ``waiting`` calls are left to record."""
        writes = self._writes
        while True:
            while writes and writes[0].done.done():
                group = writes.popleft()
                for member, result in zip(group.members, group.done.result(), strict=True):
                    self._record(member.index, result)
            with self._changed:
                if writes and writes[0].done.done():
                    continue
                if self._unfinished <= limit and len(writes) <= waiting:
                    return
                self._changed.wait()


def _never() -> bool:
    return False


def _prefetch(
    pool: ThreadPoolExecutor,
    items: Sequence[Item],
    prepare: Callable[[Item], Any],
    lookahead: int,
    should_stop: Callable[[], bool],
) -> Iterator[tuple[int, Item, tuple[Any, BaseException | None, float]]]:
    """Yield ``(index, item, timed result)`` in order, keeping ``lookahead`` prepares running
    (none started once ``should_stop()`` is true)."""
    pending: deque[tuple[int, Item, Future[Any]]] = deque()
    source = iter(enumerate(items))

    def fill() -> None:
        while len(pending) < lookahead and not should_stop():
            nxt = next(source, None)
            if nxt is None:
                return
            pending.append((nxt[0], nxt[1], pool.submit(_timed, prepare, nxt[1])))

    fill()
    while pending:
        index, item, future = pending.popleft()
        fill()
        yield index, item, future.result()
