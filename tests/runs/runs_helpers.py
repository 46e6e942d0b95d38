"""What the tests of runs share."""

from __future__ import annotations

from typing import Any

from david_data.engine import request_stop


class StopAfter:
    """Progress that asks for a stop once ``n`` samples were done."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def task(self, description: str, total: float | None = None, unit: str = "") -> Any:
        return self

    def advance(self, amount: float = 1) -> None:
        self.seen += int(amount)
        if self.seen >= self.n:
            request_stop()

    def update(self, **_: Any) -> None:
        pass

    def finish(self, status: str = "done") -> None:
        self.status = status
