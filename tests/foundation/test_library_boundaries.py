"""The library imports Prefect only in ``david_data.flows``; errors pickle (Prefect and Dask
ship them)."""

from __future__ import annotations

import ast
import pickle
import pkgutil
import subprocess
import sys
from pathlib import Path

import david_data
from david_data import errors


def test_only_the_flows_subpackage_imports_prefect():
    """Every module of the package but ``david_data.flows`` (the CLI included) imports
    without Prefect; ``david_data.flows`` is the one place that imports it."""
    modules = [
        m.name
        for m in pkgutil.walk_packages(david_data.__path__, "david_data.")
        if not m.name.startswith("david_data.flows") and m.name != "david_data.__main__"
    ]
    assert "david_data.cli._run" in modules and "david_data.store" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'flows')))\n"
        "import david_data.flows.mirror\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stderr


def test_errors_pickle_with_their_context():
    err = errors.VerificationError("SynthHuman_0001.zip: bad CRC", path="SynthHuman_0001.zip", member="rgb_0000001.png")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.VerificationError
    assert str(back) == str(err)
    assert back.member == "rgb_0000001.png"
    assert isinstance(back, ValueError)
    assert isinstance(errors.DownloadError("x"), OSError)


def test_a_missing_extra_is_an_import_error_that_pickles_with_the_extra_named():
    err = errors.MissingExtraError("--prefect needs the [prefect] extra", extra="prefect")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.extra) == (type(err), str(err), "prefect")
    assert isinstance(back, ImportError) and isinstance(back, errors.ConfigError)


def test_no_test_skips_when_our_own_modules_fail_to_import():
    """A broken import of our own code must fail (the test above imports every library
    module; the CLI and the flows are imported by their own tests), never skip."""
    tests = Path(__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(tests)}:{node.lineno}"
        for path in sorted(tests.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == "importorskip"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).split(".")[0] in {"david_data", "flows"}
    ]
    assert not offenders, f"importorskip of our own modules hides a broken import: {offenders}"
