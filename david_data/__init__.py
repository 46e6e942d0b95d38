"""david-data: mirror, convert, query and run inference on SynthHuman and the DAViD models.

``david_data.open_store(url)`` opens a converted store. zarr-python opens one too, including
``--profile compact`` stores: the package registers its lossless image codecs with zarr
through the ``zarr.codecs`` entry points, so not even ``import david_data`` is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import facts as facts
from .errors import DavidDataError as DavidDataError

__version__ = "0.1.0"

if TYPE_CHECKING:  # the real types for type checkers; at run time, the table below
    from .store import open_store as open_store
else:
    from . import _lazy

    __getattr__, __dir__, __all__ = _lazy.lazy_exports(  # keeps `import david_data` light
        __name__, {".store": ("open_store",)}, eager=("DavidDataError", "__version__", "facts")
    )
