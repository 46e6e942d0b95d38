"""Flows are thin: they plan, pick an executor, run the library's engine and publish.
Any loop over data (or anything else) belongs in the library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The flows (david_data/flows) and the entrypoints deployments/prefect.yaml names (flows/).
FLOWS = sorted([*(ROOT / "david_data" / "flows").glob("*.py"), *(ROOT / "flows").glob("*.py")])
LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def test_there_are_flows_to_check():
    assert {p.stem for p in FLOWS} >= {"mirror", "convert", "infer", "evaluate", "pipeline"}


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_loop_in_a_flow_module(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    loops = [
        f"{path.name}:{node.lineno} {type(node).__name__}"
        for node in ast.walk(tree)
        if isinstance(node, LOOPS)
    ]
    assert loops == [], "move these loops into the library: " + ", ".join(loops)
