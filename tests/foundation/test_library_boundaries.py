"""The library never imports Prefect; errors pickle (Prefect and Dask ship them)."""

from __future__ import annotations

import ast
import pickle
import pkgutil
import subprocess
import sys
from pathlib import Path

import david_data
from david_data import errors


def test_library_modules_do_not_import_prefect():
    modules = [
        m.name
        for m in pkgutil.walk_packages(david_data.__path__, "david_data.")
        if not m.name.startswith("david_data.cli") and m.name != "david_data.__main__"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "print(len(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0", out.stderr


def test_errors_pickle_with_their_context():
    err = errors.VerificationError("SynthHuman_0001.zip: bad CRC", path="SynthHuman_0001.zip", member="rgb_0000001.png")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.VerificationError
    assert str(back) == str(err)
    assert back.member == "rgb_0000001.png"
    assert isinstance(back, ValueError)
    assert isinstance(errors.DownloadError("x"), OSError)


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
