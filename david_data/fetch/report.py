"""What a fetch did: :class:`FetchReport` (what the CLI prints and a flow publishes)."""

from __future__ import annotations

from dataclasses import dataclass

from .._sizes import human_bytes
from ..engine.report import INTERRUPTED_HINT, first_lines, markdown_table
from .check import FileProblem

_WHY = {
    "crc32": ("that failed its CRC-32 check", "that failed their CRC-32 check"),
    "size": ("of the wrong size", "of the wrong size"),
    "missing": ("the manifest records but DEST lacked", "the manifest records but DEST lacked"),
    "unreadable": ("that could not be read", "that could not be read"),
}


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
    repaired: tuple[FileProblem, ...] = ()
    """Files found damaged at DEST (or recorded and missing) that this run fetched again."""
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
        lines += self.repaired_lines()
        lines += first_lines(self.failures, 20, lambda f: f"  FAILED {f[0]}: {f[1]}")
        if self.failures:
            lines.append("rerun the same command to try the failed members again")
        if self.interrupted:
            lines.append(INTERRUPTED_HINT)
        return "\n".join(lines)

    def repaired_lines(self, indent: str = "  ") -> list[str]:
        """One line per kind of damage: ``re-fetched 1 file that failed its CRC-32 check:
        rgb_0000001.png``."""
        lines = []
        for kind, (one, many) in _WHY.items():
            names = [p.name for p in self.repaired if p.kind == kind]
            if names:
                shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" * (len(names) > 10))
                files = "1 file" if len(names) == 1 else f"{len(names)} files"
                why = one if len(names) == 1 else many
                lines.append(f"{indent}re-fetched {files} {why}: {shown}")
        return lines

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
        if self.repaired:
            head += "\n" + "".join(f"{line}.\n" for line in self.repaired_lines(""))
        if not self.failures:
            return head
        rows = markdown_table(
            ("member", "reason"), [(n, r.replace("|", "/")) for n, r in self.failures]
        )
        return head + "\n" + "\n".join(rows) + "\n"
