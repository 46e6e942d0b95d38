"""Give a verified local ``.part`` file its final name, locally or in an object store.

Locally: ``os.replace`` (atomic on one filesystem). Object stores: upload to a staging
key ``NAME.<token>.staging`` beside the final key, then move it (a server-side copy) to
the final key, so a failed or killed upload never leaves a partial object under the
final name. Leftover staging keys of a killed run are removed on the next attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import settings
from ..fsutil import STAGING_SUFFIX, Files, is_local, temp_token, to_url

if TYPE_CHECKING:  # fsspec loads only where a filesystem is made (never for a local DEST)
    from fsspec import AbstractFileSystem

logger = logging.getLogger(__name__)


def scratch_dir_for(fs: Files, folder: str, explicit: str | None = None) -> Path:
    """Local folder holding partial downloads for a destination folder.

    A local destination keeps its partial files beside the final ones; an object-store
    destination gets a folder under the cache dir, keyed by its URL.
    """
    if is_local(fs):
        return Path(folder)
    if explicit:
        return Path(explicit)
    key = hashlib.sha1(to_url(fs, folder).encode()).hexdigest()[:16]
    return settings.cache_dir() / "scratch" / key


def remove_staging(fs: AbstractFileSystem, final: str) -> None:
    """Delete staging keys a killed run left for ``final``."""
    for stale in fs.glob(f"{final}.*{STAGING_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            fs.rm(stale)
            logger.info("removed the stale staging object %s", to_url(fs, stale))


def promote(local_part: Path, fs: Files | AbstractFileSystem, final: str) -> None:
    """Move the verified ``local_part`` to ``final`` in ``fs`` (see module docstring)."""
    if is_local(fs):
        os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
        os.replace(local_part, final)
    else:
        _upload(local_part, fs, final)


def _upload(local_part: Path, fs: AbstractFileSystem, final: str) -> None:
    """Upload to a staging key, move it to ``final``, remove the local file."""
    remove_staging(fs, final)
    staging = f"{final}.{temp_token()}{STAGING_SUFFIX}"
    try:
        fs.put_file(str(local_part), staging)
        fs.mv(staging, final)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(staging)
        raise
    local_part.unlink()
