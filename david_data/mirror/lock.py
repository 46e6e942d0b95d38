"""One mirror run per destination at a time.

The lock is an ``flock`` on a small file (released by the kernel when the holder dies,
even by SIGKILL, so a killed run never leaves a stale lock). For a local destination
it lives at ``DEST/.mirror.lock``; for an object store it lives in the local scratch
folder of that destination (``download_file`` locks ``NAME.lock`` beside its target), which is where partial data sits. Writes to the store
itself are atomic per key and of verified content only, so two machines mirroring to
one bucket at worst repeat work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import LockedError

LOCK_NAME = ".mirror.lock"


@contextlib.contextmanager
def hold_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` or raise :class:`LockedError` at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(
                f"another mirror run ({holder}) is writing {what}; wait for it to finish "
                "or stop it, then rerun (the run resumes where it stopped)",
                path=str(path),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
