"""Logging set-up for the CLI. Library modules log through ``logging.getLogger(__name__)``;
Prefect picks them up with ``PREFECT_LOGGING_EXTRA_LOGGERS=david_data``."""

from __future__ import annotations

import logging

LOGGER_NAME = "david_data"


def configure_cli_logging(verbose: bool = False) -> None:
    """Send david_data's log records to stderr in a short, readable format."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(getattr(h, "_david_data", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    handler._david_data = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
