"""Convert SynthHuman into a sharded Zarr v3 store with Parquet metadata.

One engine (plan, run units through an executor, fold into a report); modules, one job
each: :mod:`.source` (parts and members, zips read in place), :mod:`.zipread`,
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

if TYPE_CHECKING:  # the real types for type checkers; at run time, the table below
    from .plan import ConvertPlan as ConvertPlan
    from .plan import ConvertSettings as ConvertSettings
    from .plan import check_convert_settings as check_convert_settings
    from .plan import convert_settings as convert_settings
    from .plan import plan_convert as plan_convert
    from .report import ConversionReport as ConversionReport
    from .run import convert as convert
    from .run import run_convert as run_convert
    from .source import PartSource as PartSource
    from .source import Source as Source
    from .source import open_source as open_source
    from .units import ShardGroup as ShardGroup
    from .units import ShardJob as ShardJob
    from .write import convert_group as convert_group
else:
    from .. import _lazy

    __getattr__, __dir__, __all__ = _lazy.lazy_exports(
        __name__,
        {
            ".source": (
                "open_source",
                "Source",
                "PartSource",
            ),
            ".plan": (
                "ConvertSettings",
                "ConvertPlan",
                "convert_settings",
                "check_convert_settings",
                "plan_convert",
            ),
            ".units": (
                "ShardGroup",
                "ShardJob",
            ),
            ".write": ("convert_group",),
            ".report": ("ConversionReport",),
            ".run": (
                "convert",
                "run_convert",
            ),
        },
    )
