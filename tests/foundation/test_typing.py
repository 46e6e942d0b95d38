"""The lazy exports are typed: a type checker sees the real functions, not ``Any``, and a
misspelt name is an error, not ``Any``. At run time each package exports the names its
``if TYPE_CHECKING:`` block shows a type checker, each the real object."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
LAZY_PACKAGES = [
    "david_data",
    "david_data.compare",
    "david_data.catalog",
    "david_data.convert",
    "david_data.format",
    "david_data.mirror",
    "david_data.synth",
]

SNIPPET = """\
import david_data
import david_data.catalog
import david_data.convert
import david_data.format
import david_data.mirror
import david_data.synth

reveal_type(david_data.open_store)
reveal_type(david_data.format.consolidate_metadata)
reveal_type(david_data.catalog.load_catalog)
reveal_type(david_data.convert.convert_settings)
reveal_type(david_data.mirror.RetryPolicy)
reveal_type(david_data.synth.part_sample_ids)
david_data.opne_store
david_data.catalog.load_catalgo
david_data.convert.convrt
david_data.format.consolidate
david_data.mirror.mirorr
david_data.synth.write_prat
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
    assert status == 1, stdout + stderr  # the misspelt names, and nothing else
    misspelt = ["opne_store", "load_catalgo", "convrt", "consolidate", "mirorr", "write_prat"]
    assert stdout.count("error:") == len(misspelt), stdout
    assert all(f'has no attribute "{name}"' in stdout for name in misspelt), stdout
    revealed = [line.split("Revealed type is ", 1)[1] for line in stdout.splitlines() if "Revealed type" in line]
    assert revealed[:2] == [
        '"def (url: str, storage_options: dict[str, Any] | None =) -> david_data.store.store.SynthHumanStore"',
        '"def (store_url: str, storage_options: dict[str, Any] | None =) -> int"',
    ], stdout
    assert len(revealed) == 6 and all(r.startswith('"def (') for r in revealed), stdout
    assert "-> david_data.convert.plan.ConvertSettings" in revealed[3], stdout


def test_lazy_exports_are_the_real_functions_at_runtime():
    import david_data
    import david_data.format
    from david_data.format.consolidated import consolidate_metadata
    from david_data.store import open_store

    assert david_data.open_store is open_store
    assert david_data.format.consolidate_metadata is consolidate_metadata


def _type_checking_imports(package: str) -> dict[str, str]:
    """name -> absolute home module, from the ``if TYPE_CHECKING:`` block of its __init__."""
    init = ROOT / package.replace(".", "/") / "__init__.py"
    found: dict[str, str] = {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level >= 1, ast.unparse(imp)
                home = importlib.util.resolve_name("." * imp.level + str(imp.module), package)
                found |= {a.name: home for a in imp.names}
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_each_package_exports_at_run_time_what_type_checkers_see(package: str) -> None:
    module = importlib.import_module(package)
    seen = _type_checking_imports(package)
    assert seen, f"{package} has no TYPE_CHECKING imports"
    eager = {"DavidDataError", "__version__", "facts"} if package == "david_data" else set()
    assert sorted(module.__all__) == sorted(seen.keys() | eager)
    for name, home in seen.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)
        assert name in dir(module)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018
