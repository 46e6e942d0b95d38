"""The engine: units through each executor, failures as data, stop requests."""

from __future__ import annotations

import os
import threading
import time

import engine_units as units
import pytest

from david_data.engine import (
    ProcessExecutor,
    ThreadExecutor,
    make_executor,
    request_stop,
    reset_stop,
    run_units,
)
from david_data.errors import ConfigError


@pytest.fixture(autouse=True)
def _clear_stop():
    reset_stop()
    yield
    reset_stop()


def _err(unit, exc):
    return f"failed: {exc}"


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_results_come_back_in_unit_order_whatever_the_finish_order(kind):
    seen = []
    with make_executor(kind, 2) as ex:
        out = run_units(
            ex, units.square, list(range(10)), on_error=_err, on_result=lambda u, r: seen.append(u)
        )
    assert out.results == [n * n for n in range(10)]
    assert sorted(seen) == list(range(10))
    assert not out.interrupted and out.not_run == []


def test_a_failing_unit_becomes_a_result_and_the_others_finish():
    with make_executor("threads", 2) as ex:
        out = run_units(ex, units.fail_on_three, [1, 2, 3, 4], on_error=_err)
    assert out.results == [1, 2, "failed: three is bad", 4]


def test_processes_really_run_elsewhere():
    with make_executor("processes", 2) as ex:
        out = run_units(ex, units.pid, list(range(6)), on_error=_err)
    assert os.getpid() not in out.results


def test_stop_request_submits_nothing_more_and_reports_what_did_not_run():
    def unit(n: int) -> int:
        if n == 1:
            request_stop()  # the stop lands at a known point: while unit 1 runs
        return n

    ex = ThreadExecutor(1)
    out = run_units(ex, unit, list(range(50)), on_error=_err)
    ex.close(wait=False)
    assert out.interrupted
    # Units 0 and 1 ran; at most the one unit already queued behind them (in flight: 2).
    assert out.results[:2] == [0, 1] and len(out.results) <= 3
    assert len(out.results) + len(out.not_run) == 50


def test_stop_does_not_wait_for_ever_on_a_stuck_unit(tmp_path):
    ex = ProcessExecutor(2)
    threading.Timer(0.3, request_stop).start()
    stuck = [(30.0, str(tmp_path / f"done-{i}")) for i in range(3)]
    out = run_units(ex, units.slow_then_mark, stuck, on_error=_err, grace=1.0)
    ex.close(wait=False)
    assert out.interrupted and out.results == []
    assert len(out.not_run) == 3
    assert not list(tmp_path.glob("done-*")), "it waited for a stuck unit to finish"


def test_in_flight_units_stay_bounded():
    running = []
    lock = threading.Lock()
    peak = [0]

    def unit(n: int) -> int:
        with lock:
            running.append(n)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.01)
        with lock:
            running.remove(n)
        return n

    with make_executor("threads", 3) as ex:
        out = run_units(ex, unit, list(range(40)), on_error=_err)
    assert out.results == list(range(40))
    assert peak[0] <= 3


def test_unknown_kind_and_unreachable_dask_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown executor kind"), make_executor("gpus", 1):
        pass
    unreachable = make_executor("threads", 1, dask_address="tcp://127.0.0.1:1")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"), unreachable:
        pass


def test_a_bad_dask_address_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """At once: no Dask client is started (it would retry until its timeout); a bad form
    tries no connection, nothing listening costs one refused connection."""
    import socket

    import distributed

    attempts: list[object] = []
    connect = socket.create_connection

    def counted(*args: object, **kwargs: object) -> socket.socket:
        attempts.append(args[0])
        return connect(*args, **kwargs)  # type: ignore[arg-type]

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Dask client was started")

    monkeypatch.setattr(socket, "create_connection", counted)
    monkeypatch.setattr(distributed, "Client", no_client)
    with (
        pytest.raises(ConfigError, match="is not a scheduler address"),
        make_executor("threads", 1, dask_address="http://nowhere"),
    ):
        pass
    assert attempts == []
    with (
        pytest.raises(ConfigError, match="cannot reach the Dask scheduler"),
        make_executor("threads", 1, dask_address="tcp://127.0.0.1:1"),
    ):
        pass
    assert attempts == [("127.0.0.1", 1)]
