"""Options shared by several commands, defined once so they read and behave alike."""

from __future__ import annotations

import argparse


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


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: plain log lines instead of live progress bars."""
    parser.add_argument(
        "--no-progress", action="store_true", help="plain log lines instead of progress bars"
    )
