"""What the browse tests' stores hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SHOUTY_MODEL = '<img src=x onerror="document.body.remove()">stand-in.onnx'
"""A model name that is HTML: the page must show it as text."""


@dataclass(frozen=True)
class RunStore:
    path: Path
    ids: list[int]
    full: str
    """A run of every task holding every sample."""
    half: str
    """A depth-only run holding every other sample."""
