"""The two helpers every report's text is built with: the lines they give."""

from __future__ import annotations

from david_data.engine.report import first_lines, markdown_table


def test_first_lines_names_at_most_n_items_then_how_many_more() -> None:
    items = [(i, f"why {i}") for i in range(7)]
    assert first_lines(items, 7, lambda f: f"{f[0]}: {f[1]}") == [f"{i}: why {i}" for i in range(7)]
    assert first_lines(items, 3, lambda f: f"{f[0]}", "... {} more failure(s)") == [
        "0",
        "1",
        "2",
        "... 4 more failure(s)",
    ]
    assert first_lines([], 3, str) == []


def test_markdown_table_has_a_rule_and_one_line_per_row() -> None:
    assert markdown_table(("sample", "reason"), [(3, "bad"), (4, "")]) == [
        "| sample | reason |",
        "| --- | --- |",
        "| 3 | bad |",
        "| 4 |  |",
    ]
    assert markdown_table(("a",), []) == ["| a |", "| --- |"]
