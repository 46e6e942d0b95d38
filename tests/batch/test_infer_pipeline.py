"""The prepare -> model -> finish pipeline: bounded memory, order, failure isolation."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from david_data.infer._pipeline import ModelPipeline


class Tracker:
    """Counts items alive between prepare and finish (what the pipeline holds in memory)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.alive = 0
        self.peak = 0
        self.batches: list[int] = []

    def prepare(self, item: int) -> tuple[np.ndarray, int]:
        with self.lock:
            self.alive += 1
            self.peak = max(self.peak, self.alive)
        if item % 7 == 3:
            raise ValueError(f"item {item} is corrupt")
        return np.full((3, 2, 2), item, np.float32), item * 10

    def run_model(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append(len(batch))
        time.sleep(0.001)
        return {"depth": batch[:, 0] * 2}

    def finish(
        self, item: int, outputs: dict[str, np.ndarray], context: int, seconds: float
    ) -> tuple[str, int, float]:
        time.sleep(0.0005)
        with self.lock:
            self.alive -= 1
        assert context == item * 10
        return ("ok", item, float(outputs["depth"][0, 0]))

    def fail(self, item: int, exc: BaseException, seconds: float) -> tuple[str, int, str]:
        with self.lock:
            self.alive -= 1
        return ("failed", item, str(exc))


@pytest.mark.parametrize("count", [50, 2000])
def test_memory_is_bounded_by_the_batch_size_not_the_item_count(count: int) -> None:
    tracker = Tracker()
    results = ModelPipeline(
        prepare=tracker.prepare,
        run_model=tracker.run_model,
        finish=tracker.finish,
        fail=tracker.fail,
        batch_size=4,
        threads=3,
    ).run(list(range(count)))
    assert [r[1] for r in results] == list(range(count))  # input order
    for status, item, value in results:
        if item % 7 == 3:
            assert status == "failed" and "corrupt" in value
        else:
            assert (status, value) == ("ok", item * 2.0)
    assert max(tracker.batches) == 4 and sum(tracker.batches) == sum(
        1 for i in range(count) if i % 7 != 3
    )
    # lookahead (2 x batch) prepared + one batch at the model + lookahead being finished
    assert tracker.peak <= 2 * 8 + 4 + 3, tracker.peak


def test_a_failing_model_call_fails_only_its_items() -> None:
    calls = []

    def run_model(batch: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(batch[:, 0, 0, 0].tolist())
        if 5.0 in batch[:, 0, 0, 0]:
            raise RuntimeError("ORT: out of memory")
        return {"depth": batch[:, 0]}

    results = ModelPipeline(
        prepare=lambda i: (np.full((3, 1, 1), i, np.float32), None),
        run_model=run_model,
        finish=lambda i, out, ctx, s: ("ok", i),
        fail=lambda i, exc, s: (f"failed: {exc}", i),
        batch_size=3,
    ).run(list(range(10)))
    assert [r[0] for r in results] == ["ok"] * 3 + ["failed: ORT: out of memory"] * 3 + ["ok"] * 4


def test_commits_follow_the_order_of_the_model_calls_when_calls_finish_out_of_order() -> None:
    second_finished = threading.Event()
    committed: list[list[int]] = []

    def finish(item: int, outputs: dict[str, np.ndarray], context: None, s: float) -> int:
        if item == 0:  # the first call finishes only after the second one has
            assert second_finished.wait(timeout=30)
        else:
            second_finished.set()
        return item

    def commit(results: list[int]) -> list[int]:
        committed.append(results)
        return results

    results = ModelPipeline(
        prepare=lambda i: (np.full((3, 1, 1), i, np.float32), None),
        run_model=lambda batch: {"depth": batch[:, 0]},
        finish=finish,
        fail=lambda i, exc, s: -1,
        batch_size=1,
        threads=2,
        commit=commit,
    ).run([0, 1])
    assert results == [0, 1]
    assert committed == [[0], [1]]
