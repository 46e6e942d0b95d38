"""Convert SynthHuman into a sharded Zarr v3 store with Parquet metadata.

One engine (plan, run units through an executor, fold into a report); modules, one job
each: the parts it reads come from :mod:`david_data.sources`,
:mod:`.decode` (PNG/EXR/camera), :mod:`.metadata` (rows), :mod:`.parts` (part checksums
and pixel types), :mod:`.destination` (checks on STORE), :mod:`.selection`
(``--where``, ``--ids``, ``--limit``), :mod:`.plan` (settings, shards to write),
:mod:`.units` and :mod:`.write` (the work unit: a group of shards), :mod:`.report` and
:mod:`.run` (execute, fold). The store format itself is :mod:`david_data.format`.

Python use::

    from david_data.convert import convert
    report = convert("mirror/", "store.zarr", workers=4)

or, to pick the executor (e.g. a Dask cluster)::

    plan = plan_convert(convert_settings("mirror/", "store.zarr"))
    with make_executor("processes", 4, dask_address="tcp://host:8786") as ex:
        report = run_convert(plan, ex)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
    from ..sources.base import PartSource, Source
    from ..sources.resolve import open_source
    from .plan import (
        ConvertPlan,
        ConvertSettings,
        check_convert_settings,
        convert_settings,
        plan_convert,
    )
    from .report import ConversionReport
    from .run import convert, run_convert
    from .units import ShardGroup, ShardJob
    from .write import convert_group
else:
    from .. import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = [
    "ConversionReport",
    "ConvertPlan",
    "ConvertSettings",
    "PartSource",
    "ShardGroup",
    "ShardJob",
    "Source",
    "check_convert_settings",
    "convert",
    "convert_group",
    "convert_settings",
    "open_source",
    "plan_convert",
    "run_convert",
]
