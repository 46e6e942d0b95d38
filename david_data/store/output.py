"""Where ``query -o`` and ``show -o`` write: checked before any work, written atomically.

A destination that is a folder, lies under a file, or cannot be written (read-only file
system, no permission: probed by creating a file, since permissions alone do not tell for
root) is a :class:`~david_data.errors.ConfigError` naming it and the fix.
"""

from __future__ import annotations

import os
from typing import Any

from fsspec import AbstractFileSystem

from ..errors import ConfigError
from ..fsutil import (
    atomic_write_bytes,
    is_local,
    join,
    nearest_existing,
    probe_write,
    resolve,
    to_url,
)


def check_output_file(
    url: str, storage_options: dict[str, Any] | None = None, *, example: str = "out.png"
) -> str:
    """Refuse an output file that cannot be written (``example``: a file name the message
    suggests when ``url`` is a folder); return its URL for messages."""
    fs, path = resolve(url, storage_options)
    shown = to_url(fs, path)
    refuse_store(fs, path, "-o")
    if fs.isdir(path):
        raise ConfigError(
            f"-o {shown} is a folder; give a file name, e.g. -o {join(shown, example)}"
        )
    if is_local(fs):
        folder = nearest_existing(os.path.dirname(os.path.abspath(path)))
        if not os.path.isdir(folder):
            raise ConfigError(f"-o {shown} cannot be written: {folder} is a file, not a folder")
        try:
            probe_write(fs, folder)
        except OSError as exc:
            raise _unwritable(shown, exc) from exc
    return shown


def refuse_store(fs: AbstractFileSystem, path: str, flag: str) -> None:
    """ConfigError when ``path`` is a store's root or lies in its own entries (an output
    written there would overwrite or litter the store); ``flag`` names it in the message."""
    from ..format.layout import store_owning

    root = store_owning(fs, path)
    if root is not None:
        what = "is the store" if root == path.rstrip("/") else "lies inside the store"
        raise ConfigError(
            f"{flag} {to_url(fs, path)} {what} {to_url(fs, root)}; writing there would "
            "damage it: give a path outside the store"
        )


def write_output(url: str, data: bytes, storage_options: dict[str, Any] | None = None) -> str:
    """Write ``data`` to a path or fsspec URL atomically; return where it went."""
    fs, path = resolve(url, storage_options)
    try:
        atomic_write_bytes(fs, path, data)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise _unwritable(to_url(fs, path), exc) from exc
    except OSError as exc:
        if is_local(fs):
            raise _unwritable(to_url(fs, path), exc) from exc
        raise
    return to_url(fs, path)


def _unwritable(shown: str, exc: OSError) -> ConfigError:
    return ConfigError(
        f"-o {shown} cannot be written ({exc.strerror or exc}); choose a writable location "
        "or fix its permissions"
    )
