"""david-data: mirror, convert, query and run inference on SynthHuman and the DAViD models."""

from __future__ import annotations

from . import facts
from .errors import DavidDataError

__version__ = "0.1.0"

__all__ = ["DavidDataError", "__version__", "facts"]
