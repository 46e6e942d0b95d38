"""A part is read by the reader its kind names, looked up in one table."""

from __future__ import annotations

import pytest

from david_data.errors import ConfigError
from david_data.sources import PartRef, read_files
from david_data.sources.resolve import READERS


def test_every_kind_of_part_has_a_reader() -> None:
    assert set(READERS) == {"zip", "folder", "http"}


def test_a_part_of_an_unknown_kind_names_the_known_ones() -> None:
    part = PartRef(name="p", url="/nowhere/p.tar", kind="tar", size=0)
    with pytest.raises(
        ConfigError, match="no reader for parts of kind 'tar'; known: zip, folder, http"
    ):
        list(read_files(part, []))
