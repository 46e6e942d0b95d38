"""Each job's settings builder is the one place its parameters are spelled: its flow's
parameters and its CLI command's flags are exactly its options (``david_data.jobs``), with
the same defaults, so that no entry point can drift from the others."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
from typing import Any

import pytest

from david_data import jobs
from david_data.cli import build_parser
from david_data.cli._run import job_options
from david_data.jobs import SECRET_OPTIONS as STORAGE_OPTIONS
from david_data.pipeline import PipelineSettings

CLI_ONLY = {"help", "dry_run", "no_progress", "prefect", "dask_address", "storage_option"}
"""Flags that say how a command runs, not what the job does."""

# (command, its settings builder, its options, the flow's parameters beyond them)
ENTRY_POINTS: list[tuple[str, Any, tuple[str, ...], tuple[str, ...]]] = [
    (
        name,
        job.settings,
        job.options(),
        job.flow_parameters()[len(job.options()) :],
    )
    for name, job in ((name, factory()) for name, factory in jobs.JOBS.items())
] + [("pipeline", PipelineSettings, jobs.options_of(PipelineSettings), ("dask_address", "progress"))]


def _flow(name: str) -> Any:
    return getattr(importlib.import_module(f"david_data.flows.{name}"), f"{name}_flow")


def _subparser(command: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = sub.choices[command]
    return parser


def _default(builder: Any, name: str) -> Any:
    default = inspect.signature(builder).parameters[name].default
    factory = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", object())
    return None if default is factory else default  # a flow leaves a dict out as None


COMMAND_OF = {"infer_run": "infer"}
"""Jobs that share another job's command: ``infer --from-store STORE`` without OUTPUT runs
``infer_run``, so the ``infer`` command's flags are the options of both."""
FLAG_OF = {
    ("infer_run", "samples_per_task"): "images_per_task",
    ("evaluate", "into_store"): "no_run",
    ("browse", "store_url"): "store",
    ("browse", "runs"): "run",
}
"""The options a command reads from a flag of another name (the handler passes them)."""
COMMAND_ONLY = {"browse": {"serve", "host", "port"}}
"""Flags of a command that are not options of its job (what it does after the job)."""


def test_every_job_has_an_entry_point_to_check() -> None:
    assert {e[0] for e in ENTRY_POINTS} == {
        "mirror", "verify", "fetch", "convert", "verify_store", "infer", "infer_run", "evaluate",
        "browse", "pipeline",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "builder", "options", "run"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_a_flow_takes_exactly_its_jobs_options_with_their_defaults(
    name: str, builder: Any, options: tuple[str, ...], run: tuple[str, ...]
) -> None:
    parameters = inspect.signature(_flow(name).fn).parameters
    assert sorted(parameters) == sorted(options + run)
    for option in options:
        assert parameters[option].default == _default(builder, option), option


def _flags(name: str, options: tuple[str, ...]) -> set[str]:
    return {FLAG_OF.get((name, o), o) for o in options if o not in STORAGE_OPTIONS}


COMMANDS = sorted({COMMAND_OF.get(e[0], e[0]) for e in ENTRY_POINTS})


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_has_exactly_its_jobs_options_as_flags(command: str) -> None:
    served = [e for e in ENTRY_POINTS if COMMAND_OF.get(e[0], e[0]) == command]
    parser = _subparser(command.replace("_", "-"))
    dests = {a.dest for a in parser._actions}
    wanted = set().union(*(_flags(e[0], e[2]) for e in served))
    assert dests - CLI_ONLY - COMMAND_ONLY.get(command, set()) == wanted
    secret = any(set(e[2]) & set(STORAGE_OPTIONS) for e in served)
    assert ("storage_option" in dests) == secret
    assert ("dask_address" in dests) == any("dask_address" in e[3] for e in served)
    # Every option is read from its flag, by name (no hand-written mapping to drift).
    args = argparse.Namespace(**{d: f"<{d}>" for d in dests} | {"storage_option": ["k=v"]})
    for name, _, options, _ in served:
        renamed = {o for o in options if (name, o) in FLAG_OF}
        read = job_options(args, [o for o in options if o not in renamed])
        for option in read:
            expected = {"k": "v"} if option in STORAGE_OPTIONS else f"<{option}>"
            assert read[option] == expected
