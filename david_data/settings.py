"""Environment variables read by david-data, in one place. Explicit arguments win.

| variable | meaning | default |
| --- | --- | --- |
| ``DAVID_DATA_CACHE_DIR`` | where fetched models are cached | the user cache dir (platformdirs) |
| ``DAVID_DATA_BASE_URL`` | SynthHuman data host | the official host |
| ``DAVID_DATA_MODELS_URL`` | DAViD models host | the official host |
"""

from __future__ import annotations

import os
from pathlib import Path

from . import facts


def cache_dir() -> Path:
    """Root of david-data's cache (models live under ``models/``)."""
    explicit = os.environ.get("DAVID_DATA_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("david-data"))


def data_base_url() -> str:
    """Base URL the mirror downloads parts from."""
    return os.environ.get("DAVID_DATA_BASE_URL") or facts.DATA_BASE_URL


def models_base_url() -> str:
    """Base URL the model registry downloads ONNX files from."""
    return os.environ.get("DAVID_DATA_MODELS_URL") or facts.MODELS_BASE_URL
