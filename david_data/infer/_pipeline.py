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
thread of its own, one call after the other (e.g. one sync of their files, then their
commit markers); calls waiting for it hold no arrays, so a slow disk delays the model
only once ``lookahead`` calls wait. An exception from
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


def run_pipeline(
    items: Sequence[Item],
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
) -> list[Result | None]:
    """Run ``items`` through prepare -> model -> finish; see the module docstring.

    ``prepare(item) -> (tensor (3, H, W), context)``; ``finish(item, outputs for this item,
    context, seconds so far) -> result``; ``fail(item, exception, seconds) -> result``;
    ``commit(results of one model call's items, in order) -> their final results``;
    ``should_stop()`` is polled before each item is prepared.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    results: list[Any] = [None] * len(items)
    lookahead = max(2 * batch_size, threads)

    def record(index: int, result: Result) -> None:
        results[index] = result
        if on_result is not None:
            on_result(result)

    changed = threading.Condition()  # an item finished or a group settled
    unfinished = 0
    """Items handed to ``finish`` and not finished yet (they hold the model's outputs)."""

    def wake(_: object = None) -> None:
        with changed:
            changed.notify_all()

    def settle(group: _Group[Item, Result]) -> None:
        """Commit a group whose items are all finished (in the commit thread)."""
        try:
            if group.error is not None:
                raise group.error
            if commit is None:
                group.done.set_result(group.results)
                return
            start = time.perf_counter()
            try:
                committed = commit(group.results)
            except Exception as exc:
                share = (time.perf_counter() - start) / len(group.members)
                committed = [
                    fail(m.item, exc, m.seconds + group.share + share) for m in group.members
                ]
            group.done.set_result(committed)
        except BaseException as exc:  # the model thread re-raises it; never left waiting
            group.done.set_exception(exc)

    def finish_one(group: _Group[Item, Result], j: int, outputs: dict[str, np.ndarray]) -> None:
        nonlocal unfinished
        ready = group.members[j]
        try:
            so_far = ready.seconds + group.share
            value, error, seconds = _timed(finish, ready.item, outputs, ready.context, so_far)
            group.results[j] = (
                fail(ready.item, error, so_far + seconds) if error is not None else value
            )
        except BaseException as exc:  # fail() itself raised: the run must hear of it
            group.error = exc
        finally:
            ready.context = None  # the outputs are written: nothing of this item is needed
            with group.lock:
                group.left -= 1
                last = group.left == 0
            with changed:
                unfinished -= 1
                changed.notify_all()
            if last:  # commits run one after the other, in order, off the finishing threads
                commit_pool.submit(settle, group)

    with (
        ThreadPoolExecutor(threads, thread_name_prefix="david-prepare") as read_pool,
        ThreadPoolExecutor(threads, thread_name_prefix="david-finish") as write_pool,
        ThreadPoolExecutor(1, thread_name_prefix="david-commit") as commit_pool,
    ):
        writes: deque[_Group[Item, Result]] = deque()

        def collect(limit: int, waiting: int) -> None:
            """Record settled groups, in order, until at most ``limit`` items are being
            finished and at most ``waiting`` groups are left to record."""
            while True:
                while writes and writes[0].done.done():
                    group = writes.popleft()
                    for member, result in zip(group.members, group.done.result(), strict=True):
                        record(member.index, result)
                with changed:
                    if writes and writes[0].done.done():
                        continue
                    if unfinished <= limit and len(writes) <= waiting:
                        return
                    changed.wait()

        def run_group(members: list[_Ready[Item]]) -> None:
            nonlocal unfinished
            start = time.perf_counter()
            try:
                batch = np.stack([g.tensor for g in members])
                for g in members:
                    g.tensor = _RELEASED
                raw = run_model(batch)
                del batch
            except Exception as exc:
                share = (time.perf_counter() - start) / len(members)
                for g in members:
                    record(g.index, fail(g.item, exc, g.seconds + share))
                return
            group: _Group[Item, Result] = _Group(
                members=members, share=(time.perf_counter() - start) / len(members)
            )
            group.done.add_done_callback(wake)
            # Items being finished hold arrays: at most ``lookahead``. Groups waiting for
            # their commit (a sync of files already written) hold little: a slow disk may
            # keep ``lookahead`` of them before the model waits.
            collect(lookahead - len(members), lookahead - 1)
            writes.append(group)
            with changed:
                unfinished += len(members)
            for j in range(len(members)):
                outputs = {task: np.asarray(value[j]) for task, value in raw.items()}
                write_pool.submit(finish_one, group, j, outputs)

        group: list[_Ready[Item]] = []
        stream = _prefetch(read_pool, items, prepare, lookahead, should_stop or _never)
        for index, item, (value, error, seconds) in stream:
            if error is not None:
                record(index, fail(item, error, seconds))
                continue
            tensor, context = value
            group.append(
                _Ready(index=index, item=item, tensor=tensor, context=context, seconds=seconds)
            )
            if len(group) == batch_size:
                run_group(group)
                group = []
        if group:
            run_group(group)
        collect(0, 0)
    return results


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
