"""One mirror run per destination at a time.

The lock is an ``flock`` on a small file (released by the kernel when the holder dies,
even by SIGKILL, so a killed run never leaves a stale lock). For a local destination
it lives at ``DEST/.mirror.lock``; for an object store it lives in the local scratch
folder of that destination (``download_file`` locks ``NAME.lock`` beside its target),
which is where partial data sits. Writes to the store itself are atomic per key and of
verified content only, so two machines mirroring to one bucket at worst repeat work.

The holder removes the file when it is done (while still holding the lock), so a
finished run leaves nothing behind. A run that opened the file just before it was
removed finds, once it holds the lock, that the path no longer names its file, and
tries again on a fresh one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import LockedError

LOCK_NAME = ".mirror.lock"


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def hold_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` or raise :class:`LockedError` at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(
                f"another mirror run ({holder}) is writing {what}; wait for it to finish "
                "or stop it, then rerun (the run resumes where it stopped)",
                path=str(path),
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # removed by its last holder between our open and flock
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
