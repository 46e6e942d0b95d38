"""Set-up shared by the commands that run Prefect flows (mirror, convert, infer, evaluate,
pipeline, demo). Called before ``flows`` is imported."""

from __future__ import annotations

import logging
import os

from ..log import LOGGER_NAME


def prepare_prefect() -> None:
    """Route david_data's logging through Prefect (so it reaches run logs and the UI) and
    keep the ephemeral server quiet. Explicit environment settings win."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", LOGGER_NAME)
    # The ephemeral server's telemetry heartbeat races the CLI for the SQLite lock.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, "_david_data", False)]:
        logger.removeHandler(handler)  # Prefect's handler prints these records now
