"""Retry policy: exponential backoff with full jitter, Retry-After, bounded attempts.

Retried: connection errors, timeouts and stalls, HTTP 408/429/5xx and malformed
ranged replies (:class:`~david_data.errors.DownloadError`). Never retried:
:class:`~david_data.errors.PermanentDownloadError` (403, 404, ...). A changed remote
file (:class:`~david_data.errors.RemoteChangedError`) is not retried here: the caller
restarts the whole file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How hard to try before a part is reported as failed."""

    max_attempts: int = 8
    """Consecutive failed attempts (without progress) per request before giving up."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    """Longest Retry-After honoured; longer values are capped."""
    stall_timeout: float = 30.0
    """Seconds without a single byte after which a transfer counts as stalled."""
    connect_timeout: float = 15.0
    max_restarts: int = 3
    """Clean restarts of one file (changed ETag, 200 to a ranged request, failed verification)."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        Full jitter: uniform in [0, min(max_delay, base * 2**(attempt-1))]; a server's
        Retry-After is a lower bound (capped at ``max_retry_after``).
        """
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        wait = random.uniform(0.0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait
