"""``david-data compare`` as a Prefect flow: the comparison table as a Markdown artifact,
and with ``output`` the CSV, charts and worst-sample panels written there. Parameters
mirror the command's options."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.types import SecretDict

from david_data.compare import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_WORST,
    Comparison,
    compare_runs,
    write_comparison,
)
from david_data.store import open_store


@flow(name="compare", log_prints=True)
def compare_flow(
    store: str,
    run_a: str,
    run_b: str,
    metrics: list[str] | None = None,
    output: str | None = None,
    worst: int = DEFAULT_WORST,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    storage_options: SecretDict | None = None,
) -> Comparison:
    """Compare run B with run A of ``store`` on the samples both have metrics for."""
    options = storage_options.get_secret_value() if storage_options else None
    st = open_store(store, options)
    comparison = compare_runs(
        st, run_a, run_b, metrics=metrics, resamples=resamples, confidence=confidence, seed=seed
    )
    print(comparison.render())
    if output:
        written = write_comparison(
            comparison, output, store=st, worst=worst, storage_options=options
        )
        print(f"wrote {len(written)} files to {output}")
    create_markdown_artifact(
        markdown=comparison.markdown(),
        key="compare",
        description=f"{run_b} against {run_a} in {comparison.store}",
    )
    return comparison
