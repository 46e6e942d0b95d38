"""Helpers shared by the catalog and fetch tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

from david_data import facts
from david_data.mirror import RetryPolicy
from david_data.synth.generator import SynthOptions

# Parts straddling the scenario boundaries (face | full_body at 98,040; full_body |
# upper_body at 198,016), in the three zip flavours a reader must handle.
PARTS: dict[str, tuple[range, SynthOptions]] = {
    "SynthHuman_0000.zip": (range(0, 3), SynthOptions()),
    "SynthHuman_0019.zip": (range(98_037, 98_043), SynthOptions(zip64=True)),
    "SynthHuman_0039.zip": (
        range(198_013, 198_019),
        SynthOptions(compression="deflated", folder="SynthHuman"),
    ),
}
# Fast retries and a short stall timeout so that fault tests take seconds.
FAST = RetryPolicy(base_delay=0.01, max_delay=0.1, stall_timeout=0.5, connect_timeout=5.0)


def members(zip_path: Path) -> dict[str, bytes]:
    """Sample files of a zip by base name -> content (what a fetch must write)."""
    with zipfile.ZipFile(zip_path) as archive:
        return {
            i.filename.rsplit("/", 1)[-1]: archive.read(i)
            for i in archive.infolist()
            if facts.parse_member_name(i.filename) is not None
        }


def sample_ids_in(folder: Path) -> set[int]:
    """Ids of the samples with at least one file in ``folder``."""
    ids = set()
    for path in folder.iterdir():
        ref = facts.parse_member_name(path.name)
        if ref is not None:
            ids.add(ref.sample_id)
    return ids


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
