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

from typing import Any

_LAZY = {
    "open_source": "..sources.resolve",
    "Source": "..sources.base",
    "PartSource": "..sources.base",
    "ConvertSettings": ".plan",
    "ConvertPlan": ".plan",
    "convert_settings": ".plan",
    "check_convert_settings": ".plan",
    "plan_convert": ".plan",
    "ShardGroup": ".units",
    "ShardJob": ".units",
    "convert_group": ".write",
    "ConversionReport": ".report",
    "convert": ".run",
    "run_convert": ".run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
