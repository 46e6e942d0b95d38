"""david-data: mirror, convert, query and run inference on SynthHuman and the DAViD models.

``import david_data`` registers the store's lossless image codecs with zarr, so zarr-python
opens ``--profile compact`` stores too. ``david_data.open_store(url)`` opens a converted store.
"""

from __future__ import annotations

from typing import Any

from . import facts
from .convert import zarr_codecs as _zarr_codecs  # noqa: F401  (registers the compact codecs)
from .errors import DavidDataError

__version__ = "0.1.0"

__all__ = ["DavidDataError", "__version__", "facts", "open_store"]


def __getattr__(name: str) -> Any:
    if name == "open_store":  # imported lazily: keeps `import david_data` light
        from .store import open_store

        return open_store
    raise AttributeError(f"module 'david_data' has no attribute {name!r}")
