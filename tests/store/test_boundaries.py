"""Issue 9: the format is its own package; convert writes it, store reads it, neither
imports the other, and reading a store loads no image decoder."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import david_data

PACKAGE = Path(david_data.__file__).parent


def _imports(folder: str) -> dict[str, set[str]]:
    """Absolute module names each file of ``david_data/<folder>`` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    names.add(node.module or "")
                else:  # relative: resolve against david_data/<folder>
                    base = ["david_data", *path.relative_to(PACKAGE).parts[:-1]]
                    base = base[: len(base) - (node.level - 1)]
                    if node.module:
                        names.add(".".join([*base, node.module]))
                    else:  # from .. import convert
                        names |= {".".join([*base, a.name]) for a in node.names}
        found[str(path.relative_to(PACKAGE))] = names
    return found


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        path: sorted(n for n in names if n.startswith(forbidden))
        for path, names in _imports(folder).items()
        if any(n.startswith(forbidden) for n in names)
    }


def test_store_and_convert_do_not_import_each_other() -> None:
    assert _offenders("store", ("david_data.convert",)) == {}
    assert _offenders("convert", ("david_data.store",)) == {}
    assert _offenders("format", ("david_data.store", "david_data.convert")) == {}


def test_import_david_data_store_loads_no_image_decoders() -> None:
    code = (
        "import sys, david_data.store\n"
        "heavy = ['cv2', 'OpenEXR', 'Imath', 'david_data.convert', 'prefect', 'imagecodecs']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_zarr_finds_the_compact_codecs_under_their_old_names() -> None:
    """Stores written before the move name these codecs; the entry points still resolve."""
    code = (
        "from zarr.registry import get_codec_class\n"
        "print(get_codec_class('david_data.webp_lossless').__module__,"
        " get_codec_class('david_data.jpegls').__module__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["david_data.format.zarr_codecs"] * 2
