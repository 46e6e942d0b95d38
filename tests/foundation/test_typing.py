"""The lazy exports are typed: a type checker sees the real functions, not ``Any``, and a
misspelt name is an error, not ``Any``."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """\
import david_data
import david_data.format

reveal_type(david_data.open_store)
reveal_type(david_data.format.consolidate_metadata)
david_data.opne_store
"""


def test_lazy_exports_reveal_their_real_function_types(tmp_path, monkeypatch):
    # Our own modules only (third-party ones would be slow to analyse and play no part).
    monkeypatch.chdir(ROOT)
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    stdout, stderr, status = api.run(
        ["--no-site-packages", "--ignore-missing-imports", "--follow-imports=silent",
         f"--cache-dir={tmp_path / 'cache'}", str(snippet)]
    )
    assert status == 1, stdout + stderr  # the misspelt name, and nothing else
    assert stdout.count("error:") == 1 and 'has no attribute "opne_store"' in stdout, stdout
    revealed = [line.split("Revealed type is ", 1)[1] for line in stdout.splitlines() if "Revealed type" in line]
    assert revealed == [
        '"def (url: str, storage_options: dict[str, Any] | None =) -> david_data.store.store.SynthHumanStore"',
        '"def (store_url: str, storage_options: dict[str, Any] | None =) -> int"',
    ], stdout


def test_lazy_exports_are_the_real_functions_at_runtime():
    import david_data
    import david_data.format
    from david_data.format.consolidated import consolidate_metadata
    from david_data.store import open_store

    assert david_data.open_store is open_store
    assert david_data.format.consolidate_metadata is consolidate_metadata
