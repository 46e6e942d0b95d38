"""Keep a model busy: prepare inputs ahead of it in threads, finish outputs behind it.

::

    items --> [read pool: prepare(item)] --(<= lookahead ready)--> model on stacked batches
          --> [write pool: finish(item, outputs)] --(<= lookahead in flight)--> results

Both queues are bounded, so memory depends on the batch size, not on the number of
items. ``prepare`` and ``finish`` run in threads (OpenCV, NumPy, OpenEXR and fsspec
release the GIL for their heavy parts); the model call runs in the calling thread.
An exception from ``prepare`` or ``finish`` fails that item only; one from the model call
fails the items of that call. Results come back in input order. When ``should_stop()``
turns true no further item is prepared: the items already under way are finished and the
rest come back as None (a stop request: they are simply done by the next run).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
) -> list[Result | None]:
    """Run ``items`` through prepare -> model -> finish; see the module docstring.

    ``prepare(item) -> (tensor (3, H, W), context)``; ``finish(item, outputs for this item,
    context, seconds so far) -> result``; ``fail(item, exception, seconds) -> result``;
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

    def finish_one(
        ready: _Ready[Item], outputs: dict[str, np.ndarray], share: float
    ) -> tuple[int, Result]:
        value, error, seconds = _timed(
            finish, ready.item, outputs, ready.context, ready.seconds + share
        )
        total = ready.seconds + share + seconds
        return ready.index, (fail(ready.item, error, total) if error is not None else value)

    with (
        ThreadPoolExecutor(threads, thread_name_prefix="david-prepare") as read_pool,
        ThreadPoolExecutor(threads, thread_name_prefix="david-finish") as write_pool,
    ):
        writes: deque[Future[tuple[int, Result]]] = deque()

        def collect(limit: int) -> None:
            while len(writes) > limit:
                record(*writes.popleft().result())

        def run_group(group: list[_Ready[Item]]) -> None:
            start = time.perf_counter()
            try:
                raw = run_model(np.stack([g.tensor for g in group]))
            except Exception as exc:
                share = (time.perf_counter() - start) / len(group)
                for g in group:
                    record(g.index, fail(g.item, exc, g.seconds + share))
                return
            share = (time.perf_counter() - start) / len(group)
            for j, g in enumerate(group):
                outputs = {task: np.asarray(value[j]) for task, value in raw.items()}
                collect(lookahead - 1)
                writes.append(write_pool.submit(finish_one, g, outputs, share))

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
