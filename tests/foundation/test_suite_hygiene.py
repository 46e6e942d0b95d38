"""The suite itself stays honest: rules a test module could break without any test failing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
MODULES = sorted(p for p in TESTS.rglob("*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (
            r"^\s*(from conftest import|import conftest)",
            "each folder's conftest.py is a module named 'conftest': importing from one "
            "gets whichever was loaded first; put shared names in a helper module",
        ),
        (r"\.venv/bin/", "use sys.executable or shutil.which, not a hard-coded venv path"),
    ],
)
def test_no_test_module_breaks_a_suite_rule(pattern: str, why: str) -> None:
    found = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in MODULES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not found, f"{why}: {found}"


def test_helper_module_names_are_unique() -> None:
    # Test folders are not packages: two modules of one name shadow each other.
    names = [p.name for p in MODULES if p.name != "__init__.py"]
    assert sorted(n for n in set(names) if names.count(n) > 1) in ([], ["conftest.py"])
