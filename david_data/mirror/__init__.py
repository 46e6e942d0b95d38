"""Mirror SynthHuman: parallel, resumable, verified byte for byte, to disk or object store.

One engine (see :mod:`david_data.engine`): :func:`plan_mirror` (settings -> plain
plan, validating everything first), then :func:`run_mirror` (plan, executor -> report),
one work unit per part (:func:`.run.mirror_unit`). :func:`mirror` does both on threads
of this process.

Modules, one job each: :mod:`.http` (keep-alive client, proxies, TLS), :mod:`.retry`
(backoff policy), :mod:`.state` (per-part resume file), :mod:`.fetch` (segmented ranged
download), :mod:`.transfer` (segment schedule, checkpoints, reading a file as it
downloads), :mod:`.zipcheck` (every byte of a zip checked, while the part downloads, through
:mod:`david_data.zipformat`), :mod:`.memberset` (names and samples of a part),
:mod:`.manifest`, :mod:`.promote` (atomic final names), :mod:`.extract`, :mod:`.lock`,
:mod:`.plan`, :mod:`.part` (one part end to end), :mod:`.run` (the engine and report),
:mod:`.verify` (``david-data verify``: :func:`plan_verify`, :func:`run_verify`) and :mod:`.download` (the generic downloader).
The names below are imported on first use: ``david-data fetch`` needs only the HTTP client
and the retry policy, not the whole mirror.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, the table below
    from .download import DownloadResult as DownloadResult
    from .download import download_file as download_file
    from .manifest import MANIFEST_NAME as MANIFEST_NAME
    from .manifest import Manifest as Manifest
    from .manifest import PartRecord as PartRecord
    from .manifest import load_manifest as load_manifest
    from .part import PartOutcome as PartOutcome
    from .part import mirror_part as mirror_part
    from .plan import MirrorPlan as MirrorPlan
    from .plan import MirrorSettings as MirrorSettings
    from .plan import PartPlan as PartPlan
    from .plan import check_space as check_space
    from .plan import plan_mirror as plan_mirror
    from .retry import RetryPolicy as RetryPolicy
    from .run import MirrorReport as MirrorReport
    from .run import MirrorUnit as MirrorUnit
    from .run import mirror as mirror
    from .run import mirror_lock as mirror_lock
    from .run import mirror_unit as mirror_unit
    from .run import run_mirror as run_mirror
    from .verify import FileVerdict as FileVerdict
    from .verify import VerifyPlan as VerifyPlan
    from .verify import VerifyReport as VerifyReport
    from .verify import VerifySettings as VerifySettings
    from .verify import VerifyUnit as VerifyUnit
    from .verify import plan_verify as plan_verify
    from .verify import run_verify as run_verify
    from .verify import verify_mirror as verify_mirror
    from .verify import verify_unit as verify_unit
else:
    from .. import _lazy

    __getattr__, __dir__, __all__ = _lazy.lazy_exports(
        __name__,
        {
            ".download": (
                "DownloadResult",
                "download_file",
            ),
            ".manifest": (
                "MANIFEST_NAME",
                "Manifest",
                "PartRecord",
                "load_manifest",
            ),
            ".part": (
                "PartOutcome",
                "mirror_part",
            ),
            ".plan": (
                "MirrorPlan",
                "MirrorSettings",
                "PartPlan",
                "check_space",
                "plan_mirror",
            ),
            ".retry": ("RetryPolicy",),
            ".run": (
                "MirrorReport",
                "MirrorUnit",
                "mirror",
                "mirror_lock",
                "mirror_unit",
                "run_mirror",
            ),
            ".verify": (
                "FileVerdict",
                "VerifyPlan",
                "VerifyReport",
                "VerifySettings",
                "VerifyUnit",
                "plan_verify",
                "run_verify",
                "verify_mirror",
                "verify_unit",
            ),
        },
    )
