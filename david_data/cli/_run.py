"""How the CLI runs a job, once every argument has been validated.

A command reads its job's options (:meth:`david_data.jobs.Job.options`) from its parsed
flags with :func:`job_options` and hands them to :func:`run_job`. By default the job
plans and runs in this process (no Prefect, no server). When a Prefect API is configured
(``PREFECT_API_URL``, or an active profile that sets one) or ``--prefect`` is given, the
job runs as a flow run of ``david_data.flows.<job>`` instead (the ``[prefect]`` extra),
so it shows in the Prefect UI; with ``--prefect`` and no API configured, a temporary
server is started for this command and dies with it. The flow run plans (a run plans
once): the CLI only builds the settings, which checks their plain values first.

Either way the first Ctrl-C or SIGTERM stops the job cleanly (see
:mod:`david_data.engine.signals`), the summary is printed, and the exit status is 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from ..engine import EXIT_OK, JobReport, exit_code, handle_signals
from ..engine.report import INTERRUPTED_HINT
from ..errors import ConfigError
from ..fsutil import parse_storage_options
from ..jobs import SECRET_OPTIONS, Job
from ..progress import progress_for
from ._prefect import prefect_api_configured

P = TypeVar("P")
R = TypeVar("R", bound=JobReport)


def wants_flow_run(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "prefect", False)) or prefect_api_configured()


def job_options(args: argparse.Namespace, names: Iterable[str], **given: Any) -> dict[str, Any]:
    """The options ``names`` from the parsed flags of the same names (``given`` wins;
    fsspec options from ``--storage-option``). A name with no flag is a bug that
    ``tests/foundation/test_jobs.py`` catches: AttributeError."""
    options: dict[str, Any] = {}
    for name in names:
        if name in given:
            options[name] = given[name]
        elif name in SECRET_OPTIONS:  # --storage-option KEY=VALUE, repeatable
            options[name] = parse_storage_options(args.storage_option)
        else:
            options[name] = getattr(args, name)
    return options


def run_job(
    args: argparse.Namespace,
    job: Job[Any, P, R],
    options: dict[str, Any],
    *,
    on_plan: Callable[[P], None] | None = None,
) -> int:
    """Run ``job`` with ``options`` in this process (``on_plan`` sees the plan first), or
    as a flow run; print its summary and return the exit status (0, 1 items failed, 130
    interrupted)."""
    settings = job.settings(**options)  # the plain values, checked before anything runs
    if wants_flow_run(args):
        return report_and_exit(lambda: run_flow(job.name, options, args))
    # Planned here, before the units' signal handling: a stop while planning ends the command.
    plan = job.plan(settings)
    if on_plan is not None:
        on_plan(plan)

    def run_here() -> JobReport:
        with progress_for(not args.no_progress) as bars:
            return job.run_here(plan, progress=bars, dask_address=dask_address(args))

    return report_and_exit(run_here)


class _Described(Protocol):
    def describe(self) -> str: ...


D = TypeVar("D", bound=_Described)


def plan_or_run(
    args: argparse.Namespace,
    job: Job[Any, D, Any],
    options: dict[str, Any],
    *,
    on_plan: Callable[[D], None] | None = None,
) -> int:
    """With ``--dry-run``: print ``job``'s plan and return 0; else :func:`run_job`."""
    if args.dry_run:
        print(job.plan(job.settings(**options)).describe())
        return EXIT_OK
    return run_job(args, job, options, on_plan=on_plan)


def drawn_seed(args: argparse.Namespace) -> int:
    """``--seed`` (0 when not given), which only applies with ``--limit``."""
    if args.seed is not None and args.limit is None:
        raise ConfigError("--seed only applies with --limit N (which samples are drawn)")
    return int(args.seed or 0)


def dask_address(args: argparse.Namespace) -> str | None:
    return getattr(args, "dask_address", None)


def report_and_exit(run: Callable[[], JobReport]) -> int:
    """Run a validated job (``run``), print its summary and return the exit status."""
    # Keeps a stop that came while the job planned: the engine then runs no unit.
    with handle_signals(reset=False):
        report = run()
    print(report.summary())
    if report.interrupted:
        print(INTERRUPTED_HINT, file=sys.stderr)
    return exit_code(report)


def run_flow(flow: str, options: dict[str, Any], args: argparse.Namespace) -> JobReport:
    """Run ``david_data.flows.<flow>.<flow>_flow`` with ``options`` (and where it runs,
    from ``args``) as a flow run and return its report (also when the run ended Failed
    because some items failed)."""
    from ._prefect import prepare_prefect, temporary_server

    prepare_prefect()

    def load_flow() -> Any:
        return importlib.import_module(f"david_data.flows.{flow}")

    with temporary_server(while_starting=load_flow):
        flow_fn = getattr(load_flow(), f"{flow}_flow")
        from ..flows._executor import flow_parameters, report_of_state

        parameters = flow_parameters(
            flow_fn,
            options,
            dask_address=dask_address(args),
            progress=not getattr(args, "no_progress", False),
        )
        state = flow_fn(**parameters, return_state=True)
        report: JobReport = report_of_state(state)  # a flow found by name: its type is Any
        return report
