"""One engine for every job: plan (plain data) -> work units through an executor -> fold -> report.

A job is written once, as three plain functions in its own package::

    plan_<job>(settings)                     -> Plan    (validates, plain data, no side effects)
    run_<job>(plan, executor, progress=...)  -> Report  (calls :func:`run_units`, folds, reports)
    <unit function>(unit)                    -> result  (module-level, picklable in and out)

Where units run is the executor's business (:mod:`.executors`): threads or processes of
this machine, a Dask cluster, or Prefect tasks inside a flow (``david_data/flows/_executor.py``).
Progress and cancellation travel by futures and the stop flag (:mod:`.signals`), never
by shipping a live object to a worker.
"""

from .executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    ThreadExecutor,
    local_executor,
    make_executor,
)
from .report import JobReport, exit_code
from .run import RunOutcome, run_units
from .signals import handle_signals, request_stop, reset_stop, stop_requested

__all__ = [
    "DaskExecutor",
    "Executor",
    "JobReport",
    "ProcessExecutor",
    "RunOutcome",
    "ThreadExecutor",
    "exit_code",
    "handle_signals",
    "local_executor",
    "make_executor",
    "request_stop",
    "reset_stop",
    "run_units",
    "stop_requested",
]
