"""What a sparse store says about itself: the selections it was converted from.

A conversion with a selection (``--where``, ``--ids``, ``--limit``/``--seed``) writes only
the chosen samples: the store's metadata rows are exactly the samples it holds. Each such
conversion adds its selection, as the options that made it (``--ids 0-99 --parts 0``), to
the list ``selections`` in the root group's ``david_data`` attributes, before any shard is
written, so a killed run leaves the store marked too. A store with at least one entry is
sparse, and stays so: ``verify-store`` then checks the samples its rows hold and reports
nothing about the source's other samples. A conversion without a selection into a sparse
store adds ``every sample of --parts SPEC`` (the parts it converted whole); into a store
that is not sparse it records nothing. An entry already listed is not added again (a
resumed run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import facts
from ..errors import StoreError
from ..format.layout import ATTR_KEY, StoreLayout
from ..fsutil import atomic_write_bytes, join

if TYPE_CHECKING:
    from .plan import ConvertPlan

SELECTIONS = "selections"
"""Key of the list of selections in the store's ``david_data`` attributes."""


def selections(layout: StoreLayout) -> tuple[str, ...]:
    """The selections a store was converted from (empty: not sparse)."""
    found = layout.attributes.get(SELECTIONS) or ()
    return tuple(str(entry) for entry in found)


def parts_spec(names: Sequence[str]) -> str:
    """Part names as ``--parts`` takes them: ``0-3,7,sample`` (other names as they are)."""
    indices = sorted({i for i in map(facts.part_index, names) if i is not None})
    items: list[str] = []
    for i in indices:
        if items and i - 1 in indices:
            first = items[-1].split("-")[0]
            items[-1] = f"{first}-{i}"
        else:
            items.append(str(i))
    others = sorted(n for n in set(names) if facts.part_index(n) is None)
    return ",".join(items + ["sample" if n == facts.SAMPLE_PART else n for n in others])


def selection_entry(plan: ConvertPlan, layout: StoreLayout) -> str | None:
    """What ``plan`` adds to the store's selections (None: nothing, the store is not sparse)."""
    s = plan.settings
    if s.selection:
        return s.selection + (f" --parts {parts_spec(s.parts)}" if s.parts else "")
    if selections(layout) and plan.parts:
        return f"every sample of --parts {parts_spec(plan.parts)}"
    return None


def record_selection(layout: StoreLayout, entry: str) -> None:
    """Add ``entry`` to the store's selections (rewrites the root ``zarr.json`` atomically)."""
    path = join(layout.root, "zarr.json")
    try:
        meta: dict[str, Any] = json.loads(layout.fs.cat_file(path))
        attributes = meta["attributes"][ATTR_KEY]
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{path} is not the root of a david-data store ({type(exc).__name__}: {exc}); the "
            "store is damaged: restore it or convert into a new store",
            path=path,
        ) from exc
    listed = [str(e) for e in attributes.get(SELECTIONS) or ()]
    if entry in listed:
        return
    attributes[SELECTIONS] = [*listed, entry]
    atomic_write_bytes(layout.fs, path, json.dumps(meta, indent=2).encode())
    layout.attributes[SELECTIONS] = attributes[SELECTIONS]
