"""One engine for every job: plan (plain data) -> work units through an executor -> fold -> report.

A job is written once, as three plain functions in its own package::

    plan_<job>(settings)                     -> Plan    (validates; plain data; writes no data)
    run_<job>(plan, executor, progress=...)  -> Report  (calls :func:`run_units`, folds, reports)
    <unit function>(unit)                    -> result  (module-level, picklable in and out)

and described once in :mod:`david_data.jobs` (its settings builder, plan and run functions,
executor kind and workers), where the CLI, the flows and the pipeline read it.

What a plan may touch: it reads (HEAD requests, listings, zip directories, manifests, a
store's metadata, the model file, which it loads to learn its task and hashes to key
the outputs) and it may write and remove an empty probe file to prove that a destination
is writable. It writes nothing else: no folder, no manifest, no data. Planning is the
costly part of a small run (every HEAD, every catalog read), so a run plans once: the CLI
plans when the job runs in its process, and leaves planning to the flow run when it runs
as one (it only builds the settings, which checks their plain values).

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
from .report import (
    EXIT_ERROR,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    JobReport,
    exit_code,
)
from .run import RunOutcome, run_units
from .signals import handle_signals, request_stop, reset_stop, stop_requested

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
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
