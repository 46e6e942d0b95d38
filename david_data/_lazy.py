"""Package exports imported on first use (PEP 562), from one table per package.

A package ``__init__`` lists what it exports, by home module, and imports the same names
under ``if TYPE_CHECKING:`` (as ``name as name``) so that type checkers see the real
types and flag a misspelt name; at run time nothing is imported until a name is used::

    if TYPE_CHECKING:
        from .plan import MirrorPlan as MirrorPlan

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {".plan": ("MirrorPlan",)})

(``tests/foundation/test_typing.py`` checks that the two lists agree.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping

Getattr = Callable[[str], object]
Dir = Callable[[], list[str]]


def lazy_exports(
    package: str, homes: Mapping[str, Iterable[str]], *, eager: Iterable[str] = ()
) -> tuple[Getattr, Dir, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, which exports the
    names of ``homes`` (home module, relative to the package -> names) on first use, and
    the names in ``eager`` that it imports itself. A name, once loaded, is stored in the
    package, so later look-ups are plain attribute reads."""
    home_of = {name: module for module, names in homes.items() for name in names}
    exported = sorted({*eager, *home_of})

    def __getattr__(name: str) -> object:
        home = home_of.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exported})

    return __getattr__, __dir__, exported
