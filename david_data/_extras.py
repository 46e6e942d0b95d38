"""Optional dependencies, each brought by one extra of the ``david-data`` package.

A core install (``pip install david-data``) reads, queries, fetches, mirrors and converts;
the extras add flow runs, Dask, Azure, ONNX inference and the PyTorch loader. Code that
needs one calls :func:`require` before its work starts, so a missing extra is one message
naming it, not an ``ImportError`` halfway through a job.
"""

from __future__ import annotations

import importlib.util

from .errors import MissingExtraError

EXTRAS: dict[str, tuple[str, ...]] = {
    "prefect": ("prefect",),
    "dask": ("distributed",),
    "azure": ("adlfs",),
    "infer": ("onnxruntime", "onnx"),
    "torch": ("torch",),
}
"""Extra → the top-level modules it installs that david_data imports."""


def require(extra: str, needed_by: str, module: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` (default: the extra's first
    module) is installed; ``needed_by`` names what needs it (an option, a URL, a call)."""
    name = module or EXTRAS[extra][0]
    if importlib.util.find_spec(name) is None:
        raise MissingExtraError(
            f"{needed_by} needs the [{extra}] extra ({name} is not installed): "
            f"pip install 'david-data[{extra}]'",
            extra=extra,
        )
