"""A --query that selects no sample is a typo until shown otherwise: one error line naming
the query, exit 2, and no report folder (it was an empty page with exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from david_data.cli import main


def test_a_query_selecting_nothing_is_an_error_and_writes_nothing(
    plain_store: tuple[Path, list[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = plain_store
    sql = "SELECT sample_id FROM samples WHERE scenario = 'fase'"
    out = tmp_path / "report"
    code = main(["browse", str(store), "--query", sql, "-o", str(out), "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no samples"), err
    assert repr(sql) in lines[0] and str(store) in lines[0], err
    assert not out.exists()
