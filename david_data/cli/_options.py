"""Options shared by several commands, defined once so they read and behave alike."""

from __future__ import annotations

import argparse

from .._extras import require


def add_storage_option(parser: argparse.ArgumentParser, applies_to: str) -> None:
    """``--storage-option KEY=VALUE`` (repeatable), fsspec options for ``applies_to``."""
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"fsspec option for {applies_to}, repeatable (e.g. account_name=NAME); Azure also "
        "reads AZURE_STORAGE_CONNECTION_STRING and the other usual AZURE_STORAGE_* variables",
    )


DEVICES = ("auto", "cpu", "cuda", "tensorrt")


def add_device_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``: where a model runs."""
    parser.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="execution device; asking for a GPU that is not available is an error (default: auto)",
    )


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: plain log lines instead of live progress bars."""
    parser.add_argument(
        "--no-progress", action="store_true", help="plain log lines instead of progress bars"
    )


def add_run_options(parser: argparse.ArgumentParser, *, dask: bool) -> None:
    """``--prefect`` (run as a flow run) and, for jobs that can use a cluster,
    ``--dask-address``. See :mod:`david_data.cli._run` for how a job is run."""
    parser.add_argument(
        "--prefect",
        action="store_true",
        help="run as a Prefect flow run (visible in the UI); the default when PREFECT_API_URL "
        "or an active Prefect profile names a server",
    )
    if dask:
        parser.add_argument(
            "--dask-address",
            default=None,
            metavar="tcp://HOST:PORT",
            help="run the work units on this existing Dask cluster ('dask scheduler' + 'dask worker')",
        )


def require_run_extras(args: argparse.Namespace) -> None:
    """Before any work: the extra that ``--prefect`` (or a configured Prefect API) and
    ``--dask-address`` need, as one error naming it when it is not installed."""
    from ._prefect import prefect_api_configured

    if getattr(args, "prefect", False):
        require("prefect", "--prefect")
    elif hasattr(args, "prefect") and prefect_api_configured():
        require(
            "prefect",
            "a flow run (a Prefect API is configured; unset PREFECT_API_URL to run here)",
        )
    if getattr(args, "dask_address", None):
        require("dask", "--dask-address")


def add_job_options(parser: argparse.ArgumentParser, storage_for: str, *, dask: bool) -> None:
    """The options every job command ends with, in this order: ``--no-progress``,
    ``--storage-option`` (for ``storage_for``), ``--prefect`` and, with ``dask``,
    ``--dask-address``."""
    add_no_progress(parser)
    add_storage_option(parser, storage_for)
    add_run_options(parser, dask=dask)


def add_format_options(
    parser: argparse.ArgumentParser, *, format_help: str, output_help: str
) -> None:
    """``--format`` (table, csv, json or parquet; default table) and ``-o/--output`` (a file)
    of a command that prints a query's result."""
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help=format_help,
    )
    parser.add_argument("-o", "--output", default=None, help=output_help)
