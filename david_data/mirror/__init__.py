"""Mirror SynthHuman: parallel, resumable, verified byte for byte, to disk or object store.

Modules, one job each: :mod:`.http` (keep-alive client), :mod:`.retry` (backoff policy),
:mod:`.state` (per-part resume file), :mod:`.fetch` (segmented ranged download),
:mod:`.transfer` (segment schedule, checkpoints, reading a file as it downloads),
:mod:`.zipcheck` (one-pass zip verification, run while the part downloads), :mod:`.manifest`, :mod:`.promote`
(atomic final names), :mod:`.extract`, :mod:`.lock`, :mod:`.plan`, :mod:`.part` (one
part end to end), :mod:`.run` (a whole run without Prefect), :mod:`.verify`
(``david-data verify``) and :mod:`.download` (the generic downloader).
"""

from __future__ import annotations

from .download import DownloadResult, download_file
from .manifest import MANIFEST_NAME, Manifest, PartRecord, load_manifest
from .part import PartOutcome, mirror_part
from .plan import MirrorPlan, MirrorSettings, PartPlan, check_space, plan_mirror
from .retry import RetryPolicy
from .run import MirrorReport, mirror_lock, run_mirror
from .verify import FileVerdict, VerifyReport, verify_mirror

__all__ = [
    "MANIFEST_NAME",
    "DownloadResult",
    "FileVerdict",
    "Manifest",
    "MirrorPlan",
    "MirrorReport",
    "MirrorSettings",
    "PartOutcome",
    "PartPlan",
    "PartRecord",
    "RetryPolicy",
    "VerifyReport",
    "check_space",
    "download_file",
    "load_manifest",
    "mirror_lock",
    "mirror_part",
    "plan_mirror",
    "run_mirror",
    "verify_mirror",
]
