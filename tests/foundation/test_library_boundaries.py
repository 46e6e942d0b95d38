"""The library never imports Prefect; errors pickle (Prefect and Dask ship them)."""

from __future__ import annotations

import pickle
import pkgutil
import subprocess
import sys

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
