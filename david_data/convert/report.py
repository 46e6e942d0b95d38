"""What a conversion did: the report the CLI prints and a flow publishes
(implements :class:`david_data.engine.JobReport`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.report import first_lines

_SHOWN = 20


@dataclass(frozen=True, kw_only=True)
class ConversionReport:
    """Shards written and skipped, samples converted, and every failure by name."""

    source_url: str
    store_url: str
    shards_written: int = 0
    shards_skipped: int = 0
    samples_ok: int = 0
    sample_failures: tuple[tuple[int, str, str], ...] = ()
    """``(sample_id, part, reason)``: samples recorded with ``status = 'error'``."""
    shard_failures: tuple[tuple[int, str], ...] = ()
    """``(shard, reason)``: shards that could not be written (redone by the next run)."""
    bad_parts: tuple[tuple[str, str], ...] = ()
    """``(part, reason)``: parts that could not be read; not converted."""
    rewritten: tuple[tuple[int, str], ...] = ()
    """``(shard, reason)``: committed shards written again (a part changed, --retry-errors)."""
    shards_not_run: int = 0
    """Shards left for the next run because the run was interrupted."""
    interrupted: bool = False
    bytes_written: int = 0
    seconds: float = 0.0
    selection: str = ""
    """``N of M samples selected (--ids ...)`` when a selection made the store sparse."""

    @property
    def failure_count(self) -> int:
        return len(self.sample_failures) + len(self.shard_failures) + len(self.bad_parts)

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run was not interrupted."""
        return not self.failure_count and not self.interrupted

    def summary(self) -> str:
        rate = self.samples_ok / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.store_url}: {self.shards_written} shards written, {self.shards_skipped} already "
            f"committed; {self.samples_ok:,} samples converted, {len(self.sample_failures)} failed "
            f"({self.bytes_written / 1e6:,.1f} MB, {self.seconds:.1f} s, {rate:.1f} samples/s)"
        ]
        if self.selection:
            lines.append(f"  {self.selection}: the store holds only those")
        if self.interrupted:
            lines.append(f"  interrupted: {self.shards_not_run} shard(s) left for the next run")
        for part, reason in self.bad_parts:
            lines.append(f"  part {part} NOT converted: {reason}")
        for shard, reason in self.shard_failures:
            lines.append(f"  shard {shard} NOT written: {reason} (rerun to retry)")
        if self.rewritten:
            lines.append(f"  {len(self.rewritten)} committed shard(s) written again:")
            lines += [f"    shard {s}: {r}" for s, r in self.rewritten[:_SHOWN]]
        lines += first_lines(
            self.sample_failures,
            _SHOWN,
            lambda f: f"  sample {f[0]} ({f[1]}): {f[2]}",
            "  ... and {} more: query them with status = 'error'",
        )
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = [
            "| shards written | shards skipped | samples ok | samples failed | shards failed "
            "| parts unreadable | MB written | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {self.shards_written} | {self.shards_skipped} | {self.samples_ok} "
            f"| {len(self.sample_failures)} | {len(self.shard_failures)} | {len(self.bad_parts)} "
            f"| {self.bytes_written / 1e6:.1f} | {self.seconds:.1f} |",
        ]
        if self.selection:
            rows += ["", f"Selection: {self.selection}."]
        if self.interrupted:
            rows += ["", f"**Interrupted**: {self.shards_not_run} shard(s) left for the next run."]
        if self.sample_failures or self.shard_failures or self.bad_parts:
            rows += ["", "| item | part | reason |", "| --- | --- | --- |"]
            rows += [f"| part | {p} | {_cell(r)} |" for p, r in self.bad_parts]
            rows += [f"| shard {s} | | {_cell(r)} |" for s, r in self.shard_failures]
            rows += [f"| sample {i} | {p} | {_cell(r)} |" for i, p, r in self.sample_failures[:200]]
        return f"# Conversion of {self.source_url}\n\nStore: `{self.store_url}`\n\n" + "\n".join(
            rows
        )


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")
