"""david-data: mirror, convert, query and run inference on SynthHuman and the DAViD models.

``david_data.open_store(url)`` opens a converted store. zarr-python opens one too, including
``--profile compact`` stores: the package registers its lossless image codecs with zarr
through the ``zarr.codecs`` entry points, so not even ``import david_data`` is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import facts
from .errors import DavidDataError

__version__ = "0.1.0"

__all__ = ["DavidDataError", "__version__", "facts", "open_store"]

if TYPE_CHECKING:  # type checkers see the real function (and a misspelt name is an error)
    from .store import open_store as open_store
else:

    def __getattr__(name: str) -> object:
        if name == "open_store":  # imported lazily: keeps `import david_data` light
            from .store import open_store

            return open_store
        raise AttributeError(f"module 'david_data' has no attribute {name!r}")
