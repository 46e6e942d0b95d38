"""Checks on a conversion's STORE, made before anything is written: stores stay ours.

A STORE must be missing, an empty folder, or a david-data store; it must never be SRC or
lie inside it, never be a file, a foreign Zarr group or a folder holding other files, and
(locally) its folder must be writable. Each refusal is a :class:`ConfigError` naming the
object and the fix, and leaves the destination untouched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from fsspec import AbstractFileSystem

from ..errors import ConfigError, StoreError
from ..format.layout import ATTR_KEY, StoreLayout, open_layout
from ..fsutil import is_local, join, nearest_existing, probe_write, resolve, to_url


@dataclass(frozen=True, kw_only=True)
class Destination:
    """What a plan needs to know about its STORE."""

    url: str
    """Absolute path or full URL."""
    layout: StoreLayout | None
    """The existing store, or None when the store is to be created."""
    attributes: dict[str, Any] | None
    """The store's david_data attributes (also for a store whose creation was interrupted)."""


def check_destination(
    store_url: str,
    source_url: str,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
) -> Destination:
    """Refuse a STORE we must not write into (see the module docstring)."""
    fs, root = resolve(store_url, storage_options)
    url = to_url(fs, root)
    _refuse_inside_source(fs, root, url, source_url, source_options)
    if fs.isfile(root):
        raise ConfigError(
            f"STORE {url} is a file; give a folder that does not exist yet, an empty folder "
            "or an existing david-data store"
        )
    attributes: dict[str, Any] | None = None
    layout: StoreLayout | None = None
    if fs.isdir(root):
        attributes = _our_attributes(fs, root, url)
        if attributes is not None:
            try:
                layout = open_layout(url, storage_options)
            except StoreError:
                if "format_version" in attributes and _arrays_missing(fs, root):
                    layout = None  # its creation was interrupted: the run completes it
                else:
                    raise
    if is_local(fs):
        _refuse_read_only(fs, root, url)
    return Destination(url=url, layout=layout, attributes=attributes)


def _refuse_inside_source(
    fs: AbstractFileSystem,
    root: str,
    url: str,
    source_url: str,
    source_options: dict[str, Any] | None,
) -> None:
    source_fs, source_root = resolve(source_url, source_options)
    if type(source_fs) is not type(fs):
        return
    if is_local(fs):
        root, source_root = os.path.realpath(root), os.path.realpath(source_root)
    if root == source_root or root.startswith(source_root.rstrip("/") + "/"):
        raise ConfigError(
            f"STORE {url} is {'SRC itself' if root == source_root else 'inside SRC'} "
            f"({to_url(source_fs, source_root)}); a store must live outside the source: "
            "give another STORE"
        )


def _our_attributes(fs: AbstractFileSystem, root: str, url: str) -> dict[str, Any] | None:
    """The david_data attributes of the folder's Zarr group; refuses anything else that
    is not an empty folder."""
    try:
        meta = json.loads(fs.cat_file(join(root, "zarr.json")))
    except FileNotFoundError:
        entries = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))
        entries = [e for e in entries if e]
        if entries:
            shown = ", ".join(entries[:3]) + (
                f" and {len(entries) - 3} more" if len(entries) > 3 else ""
            )
            raise ConfigError(
                f"STORE {url} is a folder holding other files ({shown}), not a david-data store; "
                "give a folder that does not exist yet or is empty"
            ) from None
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"STORE {url} has a zarr.json that is not valid JSON ({exc}); it is not a "
            "david-data store: give another STORE"
        ) from exc
    attributes = (meta.get("attributes") or {}).get(ATTR_KEY) if isinstance(meta, dict) else None
    if not isinstance(attributes, dict):
        kind = meta.get("node_type", "node") if isinstance(meta, dict) else "node"
        raise ConfigError(
            f"STORE {url} is a Zarr {kind} not written by david-data; refusing to write into "
            "it: give a folder that does not exist yet or is empty"
        )
    return attributes


def _arrays_missing(fs: AbstractFileSystem, root: str) -> bool:
    from ..format.codecs import ARRAYS

    return any(not fs.exists(join(root, name, "zarr.json")) for name in ARRAYS)


def _refuse_read_only(fs: AbstractFileSystem, root: str, url: str) -> None:
    folder = nearest_existing(root)
    if not os.path.exists(folder):
        return
    if not os.path.isdir(folder):
        raise ConfigError(
            f"STORE {url} cannot be created: {folder} is a file, not a folder; give another STORE"
        )
    read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    if read_only_fs or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"STORE {url} is not writable ({folder} is on a read-only file system or lacks "
            "write permission); choose a writable location or fix its permissions"
        )
    # Permission bits do not tell everything (root, /proc, some network mounts): a file
    # that is made and dropped at once does, before any part is hashed or read.
    try:
        probe_write(fs, folder)
    except OSError as exc:
        raise ConfigError(
            f"STORE {url} is not writable (cannot create a file in {folder}: "
            f"{exc.strerror or exc}); choose a writable location or fix its permissions"
        ) from exc
