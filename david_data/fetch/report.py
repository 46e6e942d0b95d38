"""What a fetch did: :class:`FetchReport` (what the CLI prints and a flow publishes)."""

from __future__ import annotations

from dataclasses import dataclass

from .._sizes import human_bytes
from ..engine.report import INTERRUPTED_HINT, first_lines, markdown_table


@dataclass(frozen=True, kw_only=True)
class FetchReport:
    """Outcome of a fetch (what the CLI prints and a flow publishes)."""

    dest: str
    source: str
    samples: int
    complete: int
    """Chosen samples whose every member is now on disk and verified."""
    fetched_samples: int
    """Samples this run completed."""
    bytes_fetched: int
    """Bytes received from the server (retries and gaps included)."""
    failures: tuple[tuple[str, str], ...]
    """``(member file name, reason)``."""
    reread: tuple[str, ...]
    """Parts whose catalog was read again because they changed on the server."""
    rechecked: tuple[str, ...] = ()
    """Parts whose catalog was read again because one of their members failed twice."""
    interrupted: bool
    seconds: float

    @property
    def failure_count(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        rate = self.bytes_fetched / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"fetch into {self.dest}: {self.complete} of {self.samples} samples complete "
            f"({self.fetched_samples} fetched now), {human_bytes(self.bytes_fetched)} received "
            f"in {self.seconds:.1f}s ({human_bytes(rate)}/s), {len(self.failures)} member(s) failed"
        ]
        if self.reread:
            lines.append(f"  changed on the server, catalog read again: {', '.join(self.reread)}")
        if self.rechecked:
            lines.append(
                f"  a member failed verification, catalog read again: {', '.join(self.rechecked)}"
            )
        lines += first_lines(self.failures, 20, lambda f: f"  FAILED {f[0]}: {f[1]}")
        if self.failures:
            lines.append("rerun the same command to try the failed members again")
        if self.interrupted:
            lines.append(INTERRUPTED_HINT)
        return "\n".join(lines)

    def markdown(self) -> str:
        head = (
            f"# Fetch into `{self.dest}`\n\nFrom `{self.source}`: {self.complete} of "
            f"{self.samples} samples complete, {self.fetched_samples} fetched by this run, "
            f"{human_bytes(self.bytes_fetched)} received in {self.seconds:.1f}s"
            f"{' (interrupted)' if self.interrupted else ''}.\n"
        )
        if self.reread:
            head += f"\nRead again after a change on the server: {', '.join(self.reread)}.\n"
        if self.rechecked:
            head += f"\nRead again after a member failed: {', '.join(self.rechecked)}.\n"
        if not self.failures:
            return head
        rows = markdown_table(
            ("member", "reason"), [(n, r.replace("|", "/")) for n, r in self.failures]
        )
        return head + "\n" + "\n".join(rows) + "\n"
