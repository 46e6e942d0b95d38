"""The one way byte counts are written for people (plans, reports, progress lines)."""

from __future__ import annotations

import pytest

from david_data._sizes import human_bytes
from david_data.progress import _human


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "?"),
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (1_234_567, "1.2 MB"),
        (8e9, "8.0 GB"),
        (3.3e14, "330.0 TB"),
        (2.5e18, "2,500,000.0 TB"),
    ],
)
def test_human_bytes(n: float | None, text: str) -> None:
    assert human_bytes(n) == text


def test_progress_lines_write_bytes_the_same_way() -> None:
    assert _human(1_234_567, "bytes") == human_bytes(1_234_567)
    assert _human(12345, "images") == "12,345 images"
