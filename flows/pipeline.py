"""``david-data pipeline``: mirror, then convert, then (optionally) evaluate, as one flow
with three subflows, so the Prefect UI shows the whole chain as one run."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.types import SecretDict

from david_data.convert.run import ConversionReport
from david_data.infer.evaluate import EvaluationReport
from david_data.mirror.run import MirrorReport
from flows.convert import convert_flow
from flows.evaluate import evaluate_flow
from flows.mirror import mirror_flow


@dataclass(frozen=True, kw_only=True)
class PipelineReport:
    mirror: MirrorReport
    convert: ConversionReport | None
    evaluate: EvaluationReport | None

    @property
    def failed(self) -> bool:
        return (
            bool(self.mirror.failed)
            or self.convert is None
            or not self.convert.ok
            or (self.evaluate is not None and bool(self.evaluate.failures))
        )

    def summary(self) -> str:
        lines = [self.mirror.summary()]
        lines.append(
            self.convert.summary() if self.convert else "convert: skipped (no part was verified)"
        )
        if self.evaluate is not None:
            lines.append(self.evaluate.markdown)
        return "\n".join(lines)


@flow(name="pipeline", log_prints=True)
def pipeline_flow(
    mirror_dest: str,
    store: str,
    parts: str = "all",
    base_url: str | None = None,
    jobs: int = 4,
    segments: int = 4,
    workers: int = 2,
    profile: str = "fast",
    model_path: str | None = None,
    task: str | None = None,
    evaluation_output: str | None = None,
    query: str | None = None,
    progress: bool = True,
    storage_options: SecretDict | None = None,
) -> PipelineReport:
    """Mirror ``parts`` to ``mirror_dest``, convert the verified ones into ``store``, and
    evaluate ``model_path`` on the store when a model is given."""
    mirrored = mirror_flow(
        dest=mirror_dest,
        parts=parts,
        base_url=base_url,
        jobs=jobs,
        segments=segments,
        storage_options=storage_options,
        progress=progress,
    )
    verified = [o.name for o in mirrored.outcomes if o.status != "failed"]
    converted = None
    if verified:
        converted = convert_flow(
            source_url=mirror_dest,
            store_url=store,
            parts=list(verified),
            profile=profile,
            workers=workers,
            storage_options=storage_options,
            source_options=storage_options,
            progress=progress,
        )
    evaluated = None
    if model_path and converted is not None:
        evaluated = evaluate_flow(
            store=store,
            model_path=model_path,
            task=task or "",
            query=query,
            output=evaluation_output
            or f"{store.rstrip('/')}/_evaluations/{model_path.rsplit('/', 1)[-1]}",
            progress=progress,
            storage_options=storage_options,
        )
    report = PipelineReport(mirror=mirrored, convert=converted, evaluate=evaluated)
    lines = [
        "# SynthHuman pipeline",
        "",
        f"- mirror: {len(verified)} part(s) verified, {len(mirrored.failed)} failed → `{mirror_dest}`",
        "- convert: "
        + (
            "skipped (nothing mirrored)"
            if converted is None
            else f"{converted.samples_ok} samples, {len(converted.sample_failures)} failed"
        )
        + f" → `{store}`",
        f"- evaluate: {'not asked' if evaluated is None else f'{evaluated.samples} samples'}",
    ]
    create_markdown_artifact(
        "\n".join(lines), key="pipeline", description="mirror → convert → evaluate"
    )
    return report
