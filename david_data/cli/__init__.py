"""The ``david-data`` command line.

One module per job registers its sub-commands. Long jobs (mirror, convert, infer,
evaluate, pipeline) run as Prefect flows imported lazily from ``flows/``; quick
commands (verify, query, show, models) call the library directly and start no Prefect.

Exit status: 0 success, 1 the job ran but some items failed, 2 bad usage or a fatal error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import DavidDataError
from ..log import configure_cli_logging

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = ("synth", "mirror", "convert", "infer", "models", "ops")

EXIT_OK, EXIT_FAILURES, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="david-data",
        description=(
            "Mirror, convert, query and run the DAViD models on SynthHuman. "
            "Run 'david-data COMMAND --help' for each command's options."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # not written yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``david-data`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_cli_logging(args.verbose)
    try:
        code = args.func(args)
    except DavidDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    logging.shutdown()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
