"""The one retry bookkeeping every request loop shares (david_data.net.retry.Retries)."""

from __future__ import annotations

from david_data.errors import DownloadError
from david_data.net.http import HttpStatusError
from david_data.net.retry import Retries, RetryPolicy


def test_gives_up_after_max_attempts_and_progress_starts_the_count_again() -> None:
    retries = Retries(RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0))
    error = DownloadError("boom")
    assert retries.failed(error) is not None
    assert retries.failed(error) is not None
    assert retries.failed(error, progressed=True) is not None  # bytes came: count is 1 again
    assert retries.failures == 1
    assert retries.failed(error) is not None
    assert retries.failed(error) is None  # the third failure in a row: give up
    assert retries.failures == 3


def test_a_servers_retry_after_is_the_least_wait() -> None:
    retries = Retries(RetryPolicy(base_delay=0.0, max_delay=0.0, max_retry_after=5.0))
    busy = HttpStatusError("503", url="u", status=503, retry_after=2.5)
    assert retries.failed(busy) == 2.5
    assert retries.failed(HttpStatusError("503", url="u", status=503, retry_after=60.0)) == 5.0
