"""The ``--fault`` option of ``david-data serve`` and ``python -m david_data.synth.host``,
apart from the host so that building the command line does not load the HTTP server."""

from __future__ import annotations

import argparse
from typing import Literal, get_args

FaultKind = Literal[
    "status",
    "ignore_range",
    "malformed_range",
    "shifted_range",
    "reset",
    "stall",
    "rate_cap",
    "corrupt",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)


def add_fault_option(parser: argparse.ArgumentParser) -> None:
    """``--fault KIND[:KEY=VALUE,...]`` (repeatable), shared with ``david-data serve``."""
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, repeatable: KIND[:KEY=VALUE,...] with KIND one of "
        + ", ".join(FAULT_KINDS)
        + "; keys: times (a count or 'all', default 1), path (one file), after_bytes, seconds, "
        "code, retry_after, shift, claim, content_range, bytes_per_second, offset, xor. "
        "E.g. --fault reset:after_bytes=1000000,times=2 --fault status:code=503,retry_after=1",
    )
