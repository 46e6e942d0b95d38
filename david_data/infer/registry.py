"""The released DAViD models: list, fetch into the cache, resolve a name or file to use.

Cache layout (``DAVID_DATA_CACHE_DIR`` or the user cache directory)::

    <cache>/models/depth-model-vitb16_384.onnx          complete files only
    <cache>/models/depth-model-vitb16_384.onnx.part     an interrupted fetch (resumed)

Fetching goes through the mirror's resumable, segmented, atomic downloader, so a file
under its final name is always complete; an interrupted fetch resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..errors import ConfigError, DavidDataError, ModelError
from ..facts import MODEL_TASKS, MODELS, ModelInfo
from ..progress import NullProgress, Progress

logger = logging.getLogger(__name__)
_NO_PROGRESS = NullProgress()


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One released model as ``models list`` shows it."""

    name: str
    task: str
    file: str
    size_mb: float
    gmacs: float
    url: str
    path: Path
    """Where the model is (or would be) cached."""
    cached: bool


@dataclass(frozen=True, kw_only=True)
class FetchResult:
    """Outcome of fetching one model."""

    name: str
    path: Path
    status: str
    """``fetched``, ``cached`` (already there, nothing downloaded) or ``failed``."""
    size: int = 0
    sha256: str | None = None
    error: str | None = None


def models_dir(dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder models are cached in: ``dir`` if given, else ``<cache_dir>/models``."""
    return Path(dir).expanduser() if dir else settings.cache_dir() / "models"


def model_info(name: str) -> ModelInfo:
    """The registry entry of a released model; ConfigError listing the names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; released models: {', '.join(MODELS)} "
            "(or pass any ONNX file with --model-path FILE --task TASK)"
        ) from None


def model_url(name: str, base_url: str | None = None) -> str:
    """Download URL of a released model under ``base_url`` (default: settings.models_base_url())."""
    base = base_url or settings.models_base_url()
    return base.rstrip("/") + "/" + model_info(name).file


def cached_path(name: str, dir: str | os.PathLike[str] | None = None) -> Path:
    """Where model ``name`` is cached (whether or not it is there)."""
    return models_dir(dir) / model_info(name).file


def list_models(
    dir: str | os.PathLike[str] | None = None, base_url: str | None = None
) -> list[ModelEntry]:
    """Every released model with its URL and whether it is in the cache."""
    entries = []
    for info in MODELS.values():
        path = cached_path(info.name, dir)
        entries.append(
            ModelEntry(
                name=info.name,
                task=info.task,
                file=info.file,
                size_mb=info.size_mb,
                gmacs=info.gmacs,
                url=model_url(info.name, base_url),
                path=path,
                cached=path.is_file(),
            )
        )
    return entries


def fetch(
    names: Iterable[str],
    dir: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    progress: Progress = _NO_PROGRESS,
    segments: int = 4,
    force: bool = False,
) -> list[FetchResult]:
    """Download models into the cache (or ``dir``); a cached model is not fetched again.

    Unknown names raise ConfigError before anything is downloaded. A failed download is
    reported in its FetchResult (rerun to resume it) and the other models still come; a
    host never reached raises its UnreachableError.
    """
    from ..mirror.download import download_file

    wanted = list(dict.fromkeys(names))
    for name in wanted:
        model_info(name)
    results = []
    for name in wanted:
        path = cached_path(name, dir)
        if path.is_file() and not force:
            results.append(
                FetchResult(name=name, path=path, status="cached", size=path.stat().st_size)
            )
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        url = model_url(name, base_url)
        logger.info("fetching %s from %s", name, url)
        try:
            done = download_file(url, str(path), segments=segments, progress=progress)
        except DavidDataError as exc:
            if getattr(exc, "first_contact", False):
                raise  # the host was never reached: one error, not one per model
            logger.error("fetching %s failed: %s", name, exc)
            results.append(FetchResult(name=name, path=path, status="failed", error=str(exc)))
            continue
        results.append(
            FetchResult(name=name, path=path, status="fetched", size=done.size, sha256=done.sha256)
        )
    return results


def resolve_model(
    name: str | None,
    path: str | os.PathLike[str] | None,
    task: str | None,
    *,
    dir: str | os.PathLike[str] | None = None,
) -> tuple[str, str | None]:
    """Turn ``--model NAME`` or ``--model-path FILE [--task T]`` into (local file, task).

    A name gives its cached file and its registry task (ModelError telling how to fetch
    it when it is not cached). A path is used as is; its task may be None, meaning "read
    it from the model's outputs" when the model is loaded.
    """
    if task is not None and task not in MODEL_TASKS:
        raise ConfigError(f"unknown task {task!r}; expected one of {', '.join(MODEL_TASKS)}")
    if (name is None) == (path is None):
        raise ConfigError(
            "give exactly one of --model NAME (a released model, see 'david-data models list') "
            "or --model-path FILE"
        )
    if name is not None:
        info = model_info(name)
        if task is not None and task != info.task:
            raise ConfigError(
                f"model {name!r} is a {info.task} model, not {task}; drop --task or pick another model"
            )
        file = cached_path(name, dir)
        if not file.is_file():
            raise ModelError(
                f"model {name!r} is not in the cache ({file}); download it first with "
                f"'david-data models fetch {name}'",
                path=str(file),
            )
        return str(file), info.task
    assert path is not None  # exactly one of name and path, checked above
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"model file {file} does not exist", path=str(file))
    return str(file), task
