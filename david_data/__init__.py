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

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
    from .store import open_store
else:
    from . import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = ["DavidDataError", "__version__", "facts", "open_store"]
