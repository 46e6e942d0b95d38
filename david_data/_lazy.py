"""Package exports imported on first use (PEP 562).

A package ``__init__`` imports what it exports under ``if TYPE_CHECKING:``, so that type
checkers see the real types and flag a misspelt name, and lists the names in
``__all__`` (ruff checks that the two agree). At run time nothing is imported until a
name is used; the ``TYPE_CHECKING`` block's own imports say where each name lives::

    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        from .plan import MirrorPlan, plan_mirror

    __all__ = ["MirrorPlan", "plan_mirror"]

    __getattr__, __dir__ = lazy_exports(__name__)
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: a name its ``if TYPE_CHECKING:``
    block imports (``from .home import name``, or ``..`` for a sibling package) is imported from its home module on first
    use and then stored in the package, so later look-ups are plain attribute reads."""
    homes: dict[str, str] = {}

    def __getattr__(name: str) -> object:
        if not homes:  # read once, on the first name used
            homes.update(_type_checking_imports(package))
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        module = sys.modules[package]
        return sorted({*vars(module), *getattr(module, "__all__", ())})

    return __getattr__, __dir__


def _type_checking_imports(package: str) -> dict[str, str]:
    """Name -> home module (relative) of each ``from .home import name`` in the
    top-level ``if TYPE_CHECKING:`` block of ``package``'s ``__init__``."""
    spec = sys.modules[package].__spec__
    loader = spec.loader if spec is not None else None
    # A loader with get_source (importlib.abc.InspectLoader, not imported: it costs
    # every command importlib.resources)
    get_source = getattr(loader, "get_source", None)
    source = get_source(package) if get_source is not None else None
    if source is None:
        raise ImportError(f"cannot read the source of {package}, which names its exports")
    tree = ast.parse(source)
    homes: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.level >= 1 and stmt.module:
                    home = "." * stmt.level + stmt.module
                    homes |= {a.asname or a.name: home for a in stmt.names}
    return homes
