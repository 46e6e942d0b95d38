"""Issue 8 "queries stay read-only": SQL over a store sees only its table ``samples``."""

from __future__ import annotations

from pathlib import Path

import pytest

from david_data.cli import main
from david_data.errors import ConfigError
from david_data.store import open_store

SECRET = "not for SQL"


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A readable file outside the store, and a folder where writes would land."""
    path = tmp_path / "outside" / "secret.csv"
    path.parent.mkdir()
    path.write_text(f"a,b\n1,{SECRET}\n")
    return path


def refused(outside: Path) -> dict[str, str]:
    folder = outside.parent
    return {
        "read_text": f"SELECT * FROM read_text('{outside}')",
        "read_csv": f"SELECT * FROM read_csv('{outside}')",
        "bare path": f"SELECT * FROM '{outside}'",
        "glob": f"SELECT * FROM glob('{folder}/*')",
        "copy to": f"COPY (SELECT * FROM samples) TO '{folder}/copied.csv'",
        "attach": f"ATTACH '{folder}/other.duckdb' AS other",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "set": "SET enable_external_access = true",
        "drop": "DROP VIEW samples",
        "create": f"CREATE TABLE t AS SELECT * FROM read_text('{outside}')",
        "two statements": f"SELECT 1; SELECT * FROM read_text('{outside}')",
    }


CASES = list(refused(Path("/x/y")))


@pytest.mark.parametrize("case", CASES)
def test_store_query_refuses_files_writes_and_extensions(
    store: Path, outside: Path, case: str
) -> None:
    s = open_store(str(store))
    with pytest.raises(ConfigError, match=r"^query (refused|failed): ") as caught:
        s.query(refused(outside)[case])
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.csv"]  # nothing written
    # The connection still answers, and still over the store's own table.
    assert s.query("SELECT count(*) AS n FROM samples").column("n")[0].as_py() == 12


@pytest.mark.parametrize("case", ["read_text", "copy to", "attach", "install", "load"])
def test_the_cli_refuses_them_with_one_error_line(
    store: Path, outside: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", str(store), refused(outside)[case]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: query refused") and err.count("\n") == 1, err
    assert SECRET not in err


def test_subset_and_show_queries_are_locked_too(
    store: Path, outside: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = open_store(str(store))
    sneaky = f"SELECT sample_id FROM samples, read_csv('{outside}')"
    with pytest.raises(ConfigError, match="query refused"):
        s.subset(sneaky)
    picture = tmp_path / "grid.png"
    assert main(["show", str(store), "--query", sneaky, "-o", str(picture)]) == 2
    assert capsys.readouterr().err.startswith("error: query refused")
    assert not picture.exists()


def test_read_only_queries_still_work_on_one_reused_connection(store: Path) -> None:
    s = open_store(str(store))
    by_scenario = s.query(
        "WITH t AS (SELECT scenario FROM samples) SELECT scenario, count(*) AS n FROM t "
        "GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert by_scenario == [{"scenario": "face", "n": 8}, {"scenario": "full_body", "n": 4}]
    assert s.query("DESCRIBE samples").num_rows == len(s.metadata.column_names)
    assert s.query("EXPLAIN SELECT * FROM samples").num_rows >= 1
    connection = s._sql
    assert s.subset(
        "SELECT sample_id FROM samples WHERE scenario = 'full_body'"
    ).sample_ids.tolist() == [*range(98040, 98044)]
    assert s._sql is connection  # one DuckDB connection per open store
