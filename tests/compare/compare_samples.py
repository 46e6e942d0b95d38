"""The samples of the compare tests' store and which runs hold or spoil them."""

from __future__ import annotations

FACE = [98_037, 98_038, 98_039]
FULL_BODY = [98_040, 98_041, 198_014, 198_015]
UPPER_BODY = [198_016, 198_017, 198_018]
IDS = sorted(FACE + FULL_BODY + UPPER_BODY)
SPOILED = (98_041, 198_017, 98_037)
"""Worst first: ``noisy`` has 8x, 6x and 4x ``good``'s noise there (1.5x elsewhere)."""
PARTIAL = [98_037, 98_039, 98_040, 198_014, 198_016, 198_018]
"""The samples run ``partial`` has (6 of 10)."""
TASKS = ("depth", "normal", "foreground")
