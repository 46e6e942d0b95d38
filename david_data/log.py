"""Logging set-up for the CLI. Library modules log through ``logging.getLogger(__name__)``;
Prefect picks them up with ``PREFECT_LOGGING_EXTRA_LOGGERS=david_data``."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LOGGER_NAME = "david_data"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of each record (not the stream of
    the moment the handler was made, which may since have been closed or replaced)."""

    _david_data = True

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_cli_logging(verbose: bool = False) -> None:
    """Send david_data's log records to stderr in a short, readable format."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if any(getattr(h, "_david_data", False) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
