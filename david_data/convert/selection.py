"""Which samples a conversion takes: ``--where``, ``--ids``, ``--limit`` with ``--seed``.

The same rules as ``david-data fetch`` (:mod:`david_data.catalog.select`): the predicate
runs over the catalog's ``samples`` view (``sample_id``, ``part``, ``scenario``, ``bytes``,
``members``, ``complete``) in a locked DuckDB connection, ``--ids`` keeps ids and ranges
such as ``0-999,120000``, and ``--limit N`` draws N of what is left at random, the same
seed giving the same samples. The view is built from the directories the plan has read
anyway: a mirrored zip's central directory, an extracted folder's file names, or the
catalog of a part on an HTTP host, so a selection picks the same samples from each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError, NoInputsError
from ..sources.base import PartSource

if TYPE_CHECKING:
    import pyarrow as pa

    from ..catalog.select import Selection


def describe_selection(where: str | None, ids: str | None, limit: int | None, seed: int) -> str:
    """The selection as the options that make it (empty: every sample)."""
    items = []
    if where is not None:
        items.append(f"--where {where!r}")
    if ids is not None:
        items.append(f"--ids {ids}")
    if limit is not None:
        items.append(f"--limit {limit} --seed {seed}")
    return " ".join(items)


def make_selection(
    where: str | None, ids: str | None, limit: int | None, seed: int
) -> Selection | None:
    """The checked selection (ConfigError for a bad id list, limit or empty predicate);
    None when nothing is selected."""
    if where is None and ids is None and limit is None:
        return None
    from ..catalog.select import Selection

    return Selection(where=where, ids=ids, limit=limit, seed=seed)


def parts_for(selection: Selection | None) -> list[str] | None:
    """The parts expected to hold the selected ids (None: no id list)."""
    if selection is None or selection.ids is None:
        return None
    from ..catalog.select import parts_for_ids

    return parts_for_ids(selection.ids)


def members_table(part: PartSource) -> pa.Table:
    """The catalog's ``members`` rows of a part whose directory is read (``end_offset``
    is left null: a selection does not need it)."""
    import pyarrow as pa

    from ..catalog.directory import SCHEMA

    rows = [{"part": part.name, **row} for row in part.member_rows()]
    columns = {name: [row.get(name) for row in rows] for name in SCHEMA.names}
    return pa.table(columns, schema=SCHEMA)


def select_ids(
    parts: Sequence[PartSource], selection: Selection, source_url: str, unreadable: str = ""
) -> list[int]:
    """Ids of the selected samples of ``parts``, ascending. Raises ConfigError for a bad
    predicate or ids the parts lack, NoInputsError when nothing matches."""
    from ..catalog.catalog import Catalog, CatalogSource
    from ..catalog.directory import PartCatalog
    from ..catalog.remote import PartVersion
    from ..catalog.select import select_samples

    catalog = Catalog(
        source=CatalogSource(base=source_url),
        parts=tuple(
            PartCatalog(
                name=p.name,
                url=p.url,
                version=PartVersion(size=p.size, version=None),
                table=members_table(p),
            )
            for p in parts
        ),
    )
    try:
        chosen = select_samples(catalog, selection)
    except ConfigError as exc:
        raise ConfigError(exc.message + unreadable) from None
    ids = [int(i) for i in chosen.column("sample_id").to_pylist()]
    if not ids:
        raise NoInputsError(
            f"the selection matches no sample of {', '.join(p.name for p in parts) or source_url}"
            f"{unreadable}; try the condition with 'david-data catalog \"SELECT * FROM samples "
            "WHERE ...\"' and check --parts"
        )
    return ids
