"""Keep a model busy: prepare inputs ahead of it in threads, finish outputs behind it.

::

    items --> [read pool: prepare(item)] --(<= lookahead ready)--> model on stacked batches
          --> [write pool: finish(item, outputs); once all items of a model call are
               finished, commit(their results)] --(<= lookahead in flight)--> results

Both queues are bounded, so memory depends on the batch size, not on the number of
items. ``prepare``, ``finish`` and ``commit`` run in threads (OpenCV, NumPy, libdeflate
and file I/O release the GIL for their heavy parts); the model call runs in the calling
thread, so the writing of one call's outputs overlaps the next calls. ``commit`` (optional)
is a group step: the thread that finishes a call's last item runs it on that call's
results (e.g. one sync of their files, then their commit markers). An exception from
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

    def settle(group: _Group[Item, Result]) -> None:
        """Commit a group whose items are all finished (in the thread that finished the last)."""
        if group.error is not None:
            group.done.set_exception(group.error)
            return
        if commit is None:
            group.done.set_result(group.results)
            return
        start = time.perf_counter()
        try:
            group.done.set_result(commit(group.results))
        except Exception as exc:
            share = (time.perf_counter() - start) / len(group.members)
            group.done.set_result(
                [fail(m.item, exc, m.seconds + group.share + share) for m in group.members]
            )

    def finish_one(group: _Group[Item, Result], j: int, outputs: dict[str, np.ndarray]) -> None:
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
            with group.lock:
                group.left -= 1
                last = group.left == 0
            if last:
                settle(group)

    with (
        ThreadPoolExecutor(threads, thread_name_prefix="david-prepare") as read_pool,
        ThreadPoolExecutor(threads, thread_name_prefix="david-finish") as write_pool,
    ):
        writes: deque[_Group[Item, Result]] = deque()
        in_flight = 0

        def collect(limit: int) -> None:
            """Record finished groups, in order, until at most ``limit`` items are in flight."""
            nonlocal in_flight
            while writes and in_flight > limit:
                group = writes.popleft()
                for member, result in zip(group.members, group.done.result(), strict=True):
                    record(member.index, result)
                in_flight -= len(group.members)

        def run_group(members: list[_Ready[Item]]) -> None:
            nonlocal in_flight
            start = time.perf_counter()
            try:
                raw = run_model(np.stack([g.tensor for g in members]))
            except Exception as exc:
                share = (time.perf_counter() - start) / len(members)
                for g in members:
                    record(g.index, fail(g.item, exc, g.seconds + share))
                return
            group: _Group[Item, Result] = _Group(
                members=members, share=(time.perf_counter() - start) / len(members)
            )
            collect(lookahead - len(members))
            writes.append(group)
            in_flight += len(members)
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
        collect(0)
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
