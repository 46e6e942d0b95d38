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

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
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
else:
    from .. import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = [
    "DownloadResult",
    "FileVerdict",
    "MANIFEST_NAME",
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
