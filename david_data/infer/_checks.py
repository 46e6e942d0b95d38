"""Checks every infer/evaluate run makes before its first unit: the model, the
destination, and what each machine that runs units can see.

- :func:`check_model`: the model loads and fits its task here (ModelError naming the file
  and what is wrong: garbage, empty, truncated, wrong shapes), once, before any batch.
- :func:`check_writable`: OUTPUT is not a file and can be written (a probe file, removed
  at once: permissions alone do not tell, e.g. for root or a read-only mount).
- :func:`check_workers`: on every worker (``executor.run_everywhere``) the model file is
  readable and the same (SHA-256), and the paths the units use are visible.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from typing import Any

from ..engine import Executor
from ..errors import ConfigError, DavidDataError, ModelError
from ..fsutil import is_local, nearest_existing, probe_write, resolve, to_url


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    from .model import file_sha256

    return file_sha256(path)


def model_sha256(path: str) -> str:
    """SHA-256 of a model file, hashed once per process while the file is unchanged;
    ModelError when it cannot be read."""
    try:
        stat = os.stat(path)
        return _file_sha256(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    except OSError as exc:
        raise ModelError(
            f"cannot read model file {path} ({exc.strerror or exc})", path=path
        ) from exc


def check_model(path: str, task: str | None, *, device: str, threads: int | None) -> str:
    """Load the model here (once per process, reused by the batches that run here) and
    return its task; ModelError/DeviceError when it cannot run as ``task``."""
    from .model import load_model

    return load_model(path, task, device=device, threads=threads).task


def checked_model(
    path: str, task: str | None, *, device: str, threads: int | None
) -> tuple[str, str]:
    """:func:`check_model`, then the model file as an absolute URL: ``(url, task)``, what a
    plan hands its units."""
    task = check_model(path, task, device=device, threads=threads)
    return to_url(*resolve(path)), task


def check_writable(url: str, storage_options: dict[str, Any], *, store: bool = False) -> None:
    """ConfigError unless ``url`` (a folder, created later if missing) can be written;
    unless ``store`` (the store a run goes into), also when it is a store or one of its
    own folders, which outputs would damage."""
    from ..store.output import refuse_store

    fs, root = resolve(url, storage_options)
    if not store:
        refuse_store(fs, root, "output")
    if fs.isfile(root):
        raise ConfigError(
            f"output {to_url(fs, root)} is a file; give a folder (missing or empty) for the outputs"
        )
    # locally, probe the nearest existing folder: a plan creates nothing
    folder = nearest_existing(root) if is_local(fs) else root
    try:
        probe_write(fs, folder)
    except OSError as exc:
        raise ConfigError(
            f"cannot write to output {to_url(fs, root)} ({exc.strerror or exc}); "
            "fix its permissions or choose another OUTPUT"
        ) from exc


def _where(dask_worker: Any) -> str:
    if dask_worker is not None:
        return f"Dask worker {dask_worker.address}"
    return f"this machine ({socket.gethostname()})"


def check_worker(
    model_path: str,
    expected_sha256: str,
    paths: Sequence[str],
    storage_options: dict[str, Any],
    dask_worker: Any = None,
) -> str | None:
    """Run on each worker: None when it can read the model (the same file) and see every
    URL in ``paths``, else one sentence naming the worker and the problem. (Dask passes
    ``dask_worker`` to functions that take it.)"""
    where = _where(dask_worker)
    try:
        sha = model_sha256(model_path)
    except DavidDataError as exc:
        return f"{where}: {exc}"
    if sha != expected_sha256:
        return (
            f"{where}: model file {model_path} is another file (sha256 {sha[:12]}, expected "
            f"{expected_sha256[:12]})"
        )
    for url in paths:
        try:
            fs, path = resolve(url, storage_options)
            seen = fs.exists(path)
        except (OSError, DavidDataError):
            seen = False
        if not seen:
            return f"{where}: cannot see {url}"
    return None


def check_workers(
    executor: Executor,
    model_path: str,
    expected_sha256: str,
    paths: Sequence[str],
    storage_options: dict[str, Any],
) -> None:
    """Run :func:`check_worker` everywhere units run; one error listing every problem."""
    try:
        found = executor.run_everywhere(
            check_worker, model_path, expected_sha256, tuple(paths), storage_options
        )
    except Exception as exc:  # e.g. a worker without david-data
        raise ConfigError(
            f"cannot check the workers on {executor.description} ({type(exc).__name__}: {exc}); "
            "every worker needs david-data installed, the same version as here"
        ) from exc
    problems = [p for p in found if p]
    if not problems:
        return
    error = ModelError if any("model file" in p for p in problems) else ConfigError
    raise error(
        "; ".join(problems)
        + ": every worker must see the model file and the input and output paths at the same "
        "place (a shared folder, or fsspec URLs such as az://...); copy them there or use paths "
        "all workers share"
    )
