"""Convert SynthHuman into a sharded Zarr v3 store with Parquet metadata.

Modules, one job each: :mod:`.source` (parts and members, zips read in place),
:mod:`.zipread`, :mod:`.decode` (PNG/EXR/camera), :mod:`.metadata` (rows, schema),
:mod:`.codecs` (profiles), :mod:`.zarr_codecs` (compact codecs registered with zarr),
:mod:`.shard` (one whole shard object), :mod:`.layout` (store layout and attributes),
:mod:`.plan` (shards to write) and :mod:`.run` (execute, report).

Importing this package registers the compact profile's codecs with zarr (only zarr,
numpy and imagecodecs are imported here; the rest loads on first use).
"""

from __future__ import annotations

from typing import Any

from ..format import zarr_codecs as _zarr_codecs  # noqa: F401  (registers the codecs)

_LAZY = {
    "open_source": ".source",
    "Source": ".source",
    "PartSource": ".source",
    "plan_conversion": ".plan",
    "ConversionPlan": ".plan",
    "ShardJob": ".plan",
    "convert": ".run",
    "ConversionReport": ".run",
    "ShardRunner": ".run",
    "PROFILES": ".codecs",
    "DEFAULT_SHARD_SIZE": ".layout",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
