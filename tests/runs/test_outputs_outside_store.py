"""Outputs of infer, evaluate, query, compare and browse never land in a store: -o (or
OUTPUT) naming the store, or a path among its own entries, is one error line, exit 2,
and the store keeps every file as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from david_data.cli import main


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    "command",
    [
        ["infer", "--from-store", "{store}", "{store}", "--model-path", "{model}"],
        ["evaluate", "{store}", "--model-path", "{model}", "-o", "{store}", "--no-progress"],
        ["evaluate", "{store}", "--model-path", "{model}", "-o", "{store}/runs/eval"],
        [
            "query",
            "{store}",
            "SELECT 1 AS x",
            "--format",
            "parquet",
            "-o",
            "{store}/metadata.parquet",
        ],
        ["compare", "{store}", "a", "b", "-o", "{store}"],
        ["browse", "{store}", "-o", "{store}", "--no-progress"],
    ],
    ids=["infer", "evaluate", "evaluate-runs", "query", "compare", "browse"],
)
def test_an_output_in_the_store_is_refused_and_the_store_untouched(
    command: list[str],
    run_store: Path,
    run_models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _files(run_store)
    args = [c.format(store=run_store, model=run_models["a"]) for c in command]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"the store {run_store}" in lines[0] and "outside the store" in lines[0], err
    assert _files(run_store) == before


def test_a_folder_of_its_own_inside_a_store_stays_allowed(run_store: Path) -> None:
    """The pipeline's default evaluation folder, STORE/_evaluations/MODEL, is not the
    store's: nothing refuses it."""
    from david_data.infer._checks import check_writable

    check_writable(str(run_store / "_evaluations" / "tiny-a"), {})
    check_writable(str(run_store), {}, store=True)
