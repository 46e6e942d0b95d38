"""How the CLI runs a job, once every argument has been validated.

By default the job's engine runs in this process (no Prefect, no server). When a Prefect
API is configured (``PREFECT_API_URL``, or an active profile that sets one) or
``--prefect`` is given, the job runs as a flow run of ``david_data.flows.<job>`` instead
(the ``[prefect]`` extra), so it shows in the Prefect UI; with ``--prefect`` and no API
configured, a temporary server is started for this command and dies with it.

Either way the first Ctrl-C or SIGTERM stops the job cleanly (see
:mod:`david_data.engine.signals`), the summary is printed, and the exit status is 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import JobReport, exit_code, handle_signals
from ..engine.report import INTERRUPTED_HINT


def prefect_api_configured() -> bool:
    """Whether a Prefect server is configured, read without importing Prefect (slow)."""
    return configured_api_url() is not None


def configured_api_url() -> tuple[str, str] | None:
    """The configured Prefect API URL and where it was set (the variable, or the profile),
    read without importing Prefect; None when there is none."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url, "the environment"
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    if not url:
        return None
    return str(url), f"the Prefect profile {active!r} ({home / 'profiles.toml'})"


def wants_flow_run(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "prefect", False)) or prefect_api_configured()


def run_job(
    args: argparse.Namespace,
    *,
    run_local: Callable[[], JobReport],
    flow: str,
    flow_params: dict[str, Any],
) -> int:
    """Run a validated job in-process (``run_local``) or as a flow run of
    ``david_data.flows.<flow>``'s ``<flow>_flow`` with ``flow_params``; print its summary
    and return the exit status (0, 1 items failed, 130 interrupted)."""
    # Keeps a stop that came while the job planned: the engine then runs no unit.
    with handle_signals(reset=False):
        report = run_flow(flow, flow_params) if wants_flow_run(args) else run_local()
    print(report.summary())
    if report.interrupted:
        print(INTERRUPTED_HINT, file=sys.stderr)
    return exit_code(report)


def run_flow(flow: str, params: dict[str, Any]) -> JobReport:
    """Run ``david_data.flows.<flow>.<flow>_flow(**params)`` as a flow run and return its report
    (also when the run ended Failed because some items failed)."""
    from ._prefect import prepare_prefect, temporary_server

    prepare_prefect()

    def load_flow() -> Any:
        return importlib.import_module(f"david_data.flows.{flow}")

    with temporary_server(while_starting=load_flow):
        flow_fn = getattr(load_flow(), f"{flow}_flow")
        from ..flows._executor import report_of_state

        state = flow_fn(**params, return_state=True)
        report: JobReport = report_of_state(state)  # a flow found by name: its type is Any
        return report
