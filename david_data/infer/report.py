"""What an inference run reports: :class:`InferenceReport` (the CLI's summary, the flow's
markdown) and :func:`finish_run`, which writes the run's results table and builds it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.report import INTERRUPTED_HINT, first_lines, markdown_table
from ..fsutil import resolve, to_url
from .results import STATUS_OK, ResultRow, orphans_text, write_run_results

if TYPE_CHECKING:
    from .plan import InferencePlan


@dataclass(frozen=True, kw_only=True)
class InferenceReport:
    """The outcome of a run (implements :class:`david_data.engine.JobReport`)."""

    run_id: str
    source: str
    output: str
    model: str
    task: str
    model_sha256: str
    total: int
    skipped: int
    ok: int
    failed: int
    not_run: int
    """Inputs left for the next run because the run was interrupted."""
    orphaned: int
    failures: tuple[tuple[str, str], ...]
    """(input, reason) of every failed input."""
    seconds: float
    results_path: str | None
    """The run's results table, or None when there was nothing to do."""
    interrupted: bool = False

    @property
    def failure_count(self) -> int:
        return self.failed

    @property
    def processed(self) -> int:
        return self.ok + self.failed

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """What the CLI prints."""
        left = f", {self.not_run} not run" if self.not_run else ""
        lines = [
            f"{self.total} input(s): {self.ok} done, {self.failed} failed, {self.skipped} already "
            f"done{left} ({self.processed} in {self.seconds:.1f} s, "
            f"{self.images_per_second:.2f} images/s)",
        ]
        if self.orphaned:
            lines.append(orphans_text(self.orphaned))
        if self.results_path:
            lines.append(f"results table: {self.results_path}")
        lines += first_lines(
            self.failures,
            50,
            lambda f: f"FAILED {f[0]}: {f[1]}",
            "... {} more failure(s) in the results table",
        )
        return "\n".join(lines)

    def markdown(self) -> str:
        """What a flow publishes as its artifact."""
        lines = [
            f"# Inference run {self.run_id}" + (" (interrupted)" if self.interrupted else ""),
            "",
            "| | |",
            "| --- | --- |",
            f"| input | {self.source} |",
            f"| output | {self.output} |",
            f"| model | {self.model} ({self.task}, sha256 `{self.model_sha256[:12]}`) |",
            f"| images found | {self.total} |",
            f"| already done (skipped) | {self.skipped} |",
            f"| done | {self.ok} |",
            f"| failed | {self.failed} |",
            f"| not run | {self.not_run} |",
            f"| outputs without input | {self.orphaned} |",
            f"| time | {self.seconds:.1f} s |",
            f"| throughput | {self.images_per_second:.2f} images/s |",
            f"| results table | {self.results_path or '-'} |",
        ]
        if self.interrupted:
            lines += ["", INTERRUPTED_HINT]
        if self.failures:
            lines += ["", "## Failures", ""]
            lines += markdown_table(
                ("input", "reason"),
                [(name, reason.replace("|", "/")) for name, reason in self.failures[:100]],
            )
            if len(self.failures) > 100:
                lines.append(f"| ... | {len(self.failures) - 100} more in the results table |")
        return "\n".join(lines)


def finish_run(
    plan: InferencePlan,
    rows: Sequence[ResultRow],
    seconds: float,
    *,
    interrupted: bool = False,
    not_run: int = 0,
) -> InferenceReport:
    """Write the run's results table (when it did anything) and summarise it."""
    s = plan.settings
    fs, root = resolve(s.output, s.storage_options)
    all_rows = list(plan.rejected) + list(rows)
    path = to_url(fs, write_run_results(fs, root, plan.job.run_id, all_rows)) if all_rows else None
    failed = [r for r in all_rows if r.status != STATUS_OK]
    return InferenceReport(
        run_id=plan.job.run_id,
        source=plan.job.source.describe(),
        output=s.output,
        model=s.model_path or "",
        task=s.task or "",
        model_sha256=plan.job.model_sha256,
        total=plan.total,
        skipped=plan.skipped,
        ok=len(all_rows) - len(failed),
        failed=len(failed),
        not_run=not_run,
        orphaned=plan.orphaned,
        failures=tuple((r.input, r.error or "") for r in failed),
        seconds=seconds,
        results_path=path,
        interrupted=interrupted,
    )
