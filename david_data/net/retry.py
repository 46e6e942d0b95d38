"""Retry policy: exponential backoff with full jitter, Retry-After, bounded attempts.

Retried: connection errors, timeouts and stalls, HTTP 408/429/5xx and malformed
ranged replies (:class:`~david_data.errors.DownloadError`). Never retried:
:class:`~david_data.errors.PermanentDownloadError` (403, 404, ...). A changed remote
file (:class:`~david_data.errors.RemoteChangedError`) is not retried here: the caller
restarts the whole file.

Every request loop of the project (a HEAD, a segment of a mirrored part, a single ranged
read, a range of a catalogued part) keeps its count with one :class:`Retries`: consecutive
failed attempts, an attempt that delivered bytes starting the count again, giving up at
``max_attempts`` (the caller's error says what failed), and the wait before the next attempt from
:meth:`RetryPolicy.delay` (a server's ``Retry-After`` honoured). The caller sleeps that
wait its own way (:func:`pause` stops at once on Ctrl-C).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from ..engine.signals import stop_requested
from ..errors import JobInterrupted


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


class Retries:
    """The failed attempts of one request under a :class:`RetryPolicy` (see the module
    docstring)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        """Consecutive failed attempts so far."""

    def failed(self, exc: BaseException, *, progressed: bool = False) -> float | None:
        """Count the attempt that raised ``exc`` (one that ``progressed`` starts the count
        again) and return the seconds to wait before the next one, or None once the
        policy's attempts are spent: the caller then gives up, naming what failed."""
        self.failures = 1 if progressed else self.failures + 1
        if self.failures >= self.policy.max_attempts:
            return None
        return self.policy.delay(self.failures, getattr(exc, "retry_after", None))


def pause(seconds: float) -> None:
    """Sleep, but raise :class:`JobInterrupted` as soon as a stop is requested."""
    deadline = time.monotonic() + seconds
    while True:
        if stop_requested():
            raise JobInterrupted("stopped on request while waiting to retry")
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.2))
