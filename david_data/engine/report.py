"""What every job's report offers the CLI and the flows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

EXIT_OK, EXIT_FAILURES, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
"""The exit status of every command: success, some items failed (each named), bad usage or
a fatal error (one ``error:`` line), interrupted."""


@runtime_checkable
class JobReport(Protocol):
    """A job's outcome: how many items failed, whether it was interrupted, and its text."""

    @property
    def interrupted(self) -> bool: ...

    @property
    def failure_count(self) -> int: ...

    def summary(self) -> str: ...

    def markdown(self) -> str: ...


def exit_code(report: JobReport) -> int:
    """130 when interrupted, 1 when any item failed, else 0."""
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILURES if report.failure_count else EXIT_OK


INTERRUPTED_HINT = "interrupted; rerun the same command to resume"


def first_lines(
    items: Sequence[T], most: int, line: Callable[[T], str], more: str = "  ... and {} more"
) -> list[str]:
    """``line`` of each of the first ``most`` items, then ``more`` with the number left out
    (when any are): how a summary names what failed without flooding the terminal."""
    lines = [line(item) for item in items[:most]]
    if len(items) > most:
        lines.append(more.format(len(items) - most))
    return lines


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a Markdown table: ``header``, its rule, a line per row. Cells are written
    as they are: a caller escapes ``|`` in free text."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
