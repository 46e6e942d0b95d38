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


def test_every_job_has_an_entry_point_to_check() -> None:
    assert {e[0] for e in ENTRY_POINTS} == {
        "mirror", "verify", "fetch", "convert", "verify_store", "infer", "evaluate", "pipeline",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "builder", "options", "run"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_a_flow_takes_exactly_its_jobs_options_with_their_defaults(
    name: str, builder: Any, options: tuple[str, ...], run: tuple[str, ...]
) -> None:
    parameters = inspect.signature(_flow(name).fn).parameters
    assert sorted(parameters) == sorted(options + run)
    for option in options:
        assert parameters[option].default == _default(builder, option), option


@pytest.mark.parametrize(("name", "builder", "options", "run"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_a_command_has_exactly_its_jobs_options_as_flags(
    name: str, builder: Any, options: tuple[str, ...], run: tuple[str, ...]
) -> None:
    parser = _subparser(name.replace("_", "-"))
    dests = {a.dest for a in parser._actions}
    assert dests - CLI_ONLY == set(options) - set(STORAGE_OPTIONS)
    assert ("storage_option" in dests) == bool(set(options) & set(STORAGE_OPTIONS))
    assert ("dask_address" in dests) == ("dask_address" in run)
    # Every option is read from its flag, by name (no hand-written mapping to drift).
    args = argparse.Namespace(**{d: f"<{d}>" for d in dests} | {"storage_option": ["k=v"]})
    read = job_options(args, options)
    for option in options:
        expected = {"k": "v"} if option in STORAGE_OPTIONS else f"<{option}>"
        assert read[option] == expected
