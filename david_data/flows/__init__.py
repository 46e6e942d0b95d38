"""Prefect flows over the david_data library: retries, concurrency, artifacts; no business logic."""

import logging

# Prefect hands its handlers to PREFECT_LOGGING_EXTRA_LOGGERS (david_data) but not a level;
# without one the library's INFO records would stop at the root logger's WARNING.
_library_logger = logging.getLogger("david_data")
if _library_logger.level == logging.NOTSET:
    _library_logger.setLevel(logging.INFO)
