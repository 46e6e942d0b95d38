"""Mirror SynthHuman: parallel, resumable, verified byte for byte, to disk or object store.

One engine (see :mod:`david_data.engine`): :func:`plan_mirror` (settings -> plain
plan, validating everything first), then :func:`run_mirror` (plan, executor -> report),
one work unit per part (:func:`.run.mirror_unit`). :func:`mirror` does both on threads
of this process.

Modules, one job each: :mod:`.state` (per-part resume file), :mod:`.segmented` (segmented
ranged download of one file), :mod:`.transfer` (segment schedule, checkpoints, reading a file as it
downloads), :mod:`.zipcheck` (every byte of a zip checked, while the part downloads, through
:mod:`david_data.zipformat`), :mod:`.memberset` (names and samples of a part),
:mod:`.manifest`, :mod:`.promote` (atomic final names), :mod:`.extract`, :mod:`.lock`,
:mod:`.plan`, :mod:`.part` (one part end to end), :mod:`.run` (the engine and report),
:mod:`.verify` (``david-data verify``: :func:`plan_verify`, :func:`run_verify`) and :mod:`.download` (the generic downloader).
The HTTP client and the retry policy are :mod:`david_data.net`'s, shared with the catalog
and ``david-data fetch`` (``RetryPolicy`` is still importable from here). The names below
are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..net.retry import RetryPolicy
    from .download import DownloadResult, download_file
    from .manifest import MANIFEST_NAME, Manifest, PartRecord, load_manifest
    from .part import PartOutcome, mirror_part
    from .plan import MirrorPlan, MirrorSettings, PartPlan, check_space, plan_mirror
    from .run import MirrorReport, MirrorUnit, mirror, mirror_lock, mirror_unit, run_mirror
    from .verify import (
        FileVerdict,
        VerifyPlan,
        VerifyReport,
        VerifySettings,
        VerifyUnit,
        plan_verify,
        run_verify,
        verify_mirror,
        verify_unit,
    )

_HOMES = {
    "DownloadResult": ".download",
    "download_file": ".download",
    "MANIFEST_NAME": ".manifest",
    "Manifest": ".manifest",
    "PartRecord": ".manifest",
    "load_manifest": ".manifest",
    "PartOutcome": ".part",
    "mirror_part": ".part",
    "MirrorPlan": ".plan",
    "MirrorSettings": ".plan",
    "PartPlan": ".plan",
    "check_space": ".plan",
    "plan_mirror": ".plan",
    "RetryPolicy": "..net.retry",
    "MirrorReport": ".run",
    "MirrorUnit": ".run",
    "mirror": ".run",
    "mirror_lock": ".run",
    "mirror_unit": ".run",
    "run_mirror": ".run",
    "FileVerdict": ".verify",
    "VerifyPlan": ".verify",
    "VerifyReport": ".verify",
    "VerifySettings": ".verify",
    "VerifyUnit": ".verify",
    "plan_verify": ".verify",
    "run_verify": ".verify",
    "verify_mirror": ".verify",
    "verify_unit": ".verify",
}

__all__ = [
    "MANIFEST_NAME",
    "DownloadResult",
    "FileVerdict",
    "Manifest",
    "MirrorPlan",
    "MirrorReport",
    "MirrorSettings",
    "MirrorUnit",
    "PartOutcome",
    "PartPlan",
    "PartRecord",
    "RetryPolicy",
    "VerifyPlan",
    "VerifyReport",
    "VerifySettings",
    "VerifyUnit",
    "check_space",
    "download_file",
    "load_manifest",
    "mirror",
    "mirror_lock",
    "mirror_part",
    "mirror_unit",
    "plan_mirror",
    "plan_verify",
    "run_mirror",
    "run_verify",
    "verify_mirror",
    "verify_unit",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
