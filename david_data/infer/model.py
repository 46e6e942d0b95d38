"""A DAViD ONNX model: its tasks read from its outputs, checked, batched, run.

What FORMAT.md says a model looks like (N = batch, fixed or dynamic)::

    input         (N, 3, 512, 512) float32 BGR in [0, 1]; its name is whatever the file says
    depth         (N, 512, 512) or (N, 1, 512, 512)   relative, larger = nearer
    normal        (N, 3, 512, 512)
    foreground    (N, 1, 512, 512)
    multitask     three outputs: depth, normal, foreground, in that order

``DavidModel.run`` returns canonical shapes whatever the file's: depth (N, 512, 512),
normal (N, 3, 512, 512), foreground (N, 512, 512). A dynamic batch axis runs the whole
batch in one call; a fixed one runs it in chunks of that size (the last padded).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError
from ..facts import MODEL_INPUT_SIZE, MODEL_TASKS
from .runtime import postprocess, preprocess
from .session import get_session, resolve_device

TASK_OUTPUTS = {
    "depth": ("depth",),
    "normal": ("normal",),
    "foreground": ("foreground",),
    "multitask": ("depth", "normal", "foreground"),
}
_S = MODEL_INPUT_SIZE
_EXPECTED_OUTPUT = {
    "depth": "(N, 512, 512) or (N, 1, 512, 512)",
    "normal": "(N, 3, 512, 512)",
    "foreground": "(N, 1, 512, 512)",
}


def _dim_fits(dim: Any, want: int) -> bool:
    """A declared dimension fits when it is symbolic/unknown or equals ``want``."""
    return not isinstance(dim, int) or dim == want


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(d) if d is not None else "?" for d in shape) + ")"


def _output_fits(task: str, shape: list[Any]) -> bool:
    if task == "depth" and len(shape) == 3:
        return all(_dim_fits(d, _S) for d in shape[1:])
    channels = 3 if task == "normal" else 1
    return (
        len(shape) == 4
        and _dim_fits(shape[1], channels)
        and all(_dim_fits(d, _S) for d in shape[2:])
    )


def _guess_task(outputs: list[Any], file: Path) -> str:
    """Infer the task of a model given without one, from its outputs' count, shapes and names."""
    if len(outputs) == 3:
        return "multitask"
    if len(outputs) == 1:
        shape, name = list(outputs[0].shape), outputs[0].name.lower()
        if len(shape) == 3:
            return "depth"
        if len(shape) == 4 and shape[1] == 3:
            return "normal"
        if len(shape) == 4 and shape[1] == 1:
            if "depth" in name:
                return "depth"
            if any(word in name for word in ("fore", "mask", "seg", "alpha", "matte")):
                return "foreground"
            raise ModelError(
                f"model {file} has one output {name!r} of shape {_shape_text(shape)}, which fits both "
                "a depth and a foreground model; say which with --task depth|foreground",
                path=str(file),
            )
    shapes = ", ".join(f"{o.name} {_shape_text(o.shape)}" for o in outputs)
    raise ModelError(
        f"model {file} has outputs [{shapes}]; a DAViD model has one output (depth (N, 512, 512), "
        "normal (N, 3, 512, 512) or foreground (N, 1, 512, 512)) or three (depth, normal, "
        "foreground) for the multi-task model",
        path=str(file),
    )


@dataclass(frozen=True, kw_only=True)
class ModelSignature:
    """The checked interface of a model file."""

    task: str
    tasks: tuple[str, ...]
    input_name: str
    batch_size: int | None
    """The fixed batch size, or None when the batch axis is dynamic."""
    output_names: tuple[str, ...]


def inspect_session(session: Any, file: Path, task: str | None) -> ModelSignature:
    """Check a session's input and outputs against ``task`` (or infer it); raise ModelError."""
    if task is not None and task not in MODEL_TASKS:
        raise ConfigError(f"unknown task {task!r}; expected one of {', '.join(MODEL_TASKS)}")
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(f"{i.name} {_shape_text(i.shape)}" for i in inputs)
        raise ModelError(
            f"model {file} has {len(inputs)} inputs [{names}]; expected one input (N, 3, 512, 512)",
            path=str(file),
        )
    shape = list(inputs[0].shape)
    if len(shape) != 4 or not (
        _dim_fits(shape[1], 3) and _dim_fits(shape[2], _S) and _dim_fits(shape[3], _S)
    ):
        raise ModelError(
            f"model {file} input {inputs[0].name!r} has shape {_shape_text(shape)}; "
            "expected (N, 3, 512, 512) with N fixed or dynamic",
            path=str(file),
        )
    if inputs[0].type != "tensor(float)":
        raise ModelError(
            f"model {file} input {inputs[0].name!r} is {inputs[0].type}; expected tensor(float) (float32)",
            path=str(file),
        )
    outputs = session.get_outputs()
    task = task or _guess_task(outputs, file)
    tasks = TASK_OUTPUTS[task]
    if len(outputs) != len(tasks):
        got = ", ".join(f"{o.name} {_shape_text(o.shape)}" for o in outputs)
        want = ", ".join(f"{t} {_EXPECTED_OUTPUT[t]}" for t in tasks)
        raise ModelError(
            f"model {file} has {len(outputs)} output(s) [{got}]; a {task} model has "
            f"{len(tasks)} [{want}]",
            path=str(file),
        )
    for out, out_task in zip(outputs, tasks, strict=True):
        if not _output_fits(out_task, list(out.shape)):
            raise ModelError(
                f"model {file} output {out.name!r} has shape {_shape_text(out.shape)}; "
                f"expected {out_task} {_EXPECTED_OUTPUT[out_task]}",
                path=str(file),
            )
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return ModelSignature(
        task=task,
        tasks=tasks,
        input_name=inputs[0].name,
        batch_size=batch,
        output_names=tuple(o.name for o in outputs),
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


class DavidModel:
    """A loaded, checked DAViD model. Thread-safe: ORT sessions run concurrently."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        task: str | None = None,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.device = resolve_device(device)
        self.session = get_session(self.path, self.device, threads)
        self.signature = inspect_session(self.session, self.path, task)

    @property
    def task(self) -> str:
        """``depth``, ``normal``, ``foreground`` or ``multitask``."""
        return self.signature.task

    @property
    def tasks(self) -> tuple[str, ...]:
        """The outputs' tasks in order, e.g. ``("depth", "normal", "foreground")``."""
        return self.signature.tasks

    @property
    def batch_size(self) -> int | None:
        """The model's fixed batch size, or None when its batch axis is dynamic."""
        return self.signature.batch_size

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @functools.cached_property
    def sha256(self) -> str:
        """SHA-256 of the model file (computed once, on first use)."""
        return file_sha256(self.path)

    def __repr__(self) -> str:
        return f"DavidModel({self.path.name!r}, task={self.task!r}, device={self.device!r})"

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run pre-processed images (N, 3, 512, 512) float32; returns task -> (N, ...) raw outputs.

        Shapes: depth (N, 512, 512), normal (N, 3, 512, 512), foreground (N, 512, 512).
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (3, _S, _S):
            raise ModelError(f"a model batch must be (N, 3, 512, 512); got {batch.shape}")
        n = batch.shape[0]
        step = self.batch_size or max(n, 1)
        chunks: list[list[np.ndarray]] = []
        for start in range(0, n, step):
            chunk = batch[start : start + step]
            if len(chunk) < step:  # fixed batch axis: pad the last chunk
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, pad])
            outs = self.session.run(None, {self.signature.input_name: chunk})
            chunks.append([o[: min(step, n - start)] for o in outs])
        result: dict[str, np.ndarray] = {}
        for i, task in enumerate(self.tasks):
            parts = [c[i] for c in chunks]
            stacked = (
                np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else np.zeros((0,))
            )
            result[task] = self._canonical(task, np.asarray(stacked, dtype=np.float32), n)
        return result

    def _canonical(self, task: str, array: np.ndarray, n: int) -> np.ndarray:
        want = (n, 3, _S, _S) if task == "normal" else (n, _S, _S)
        if task != "normal" and array.shape == (n, 1, _S, _S):
            array = array.reshape(want)
        if array.shape != want:
            raise ModelError(
                f"model {self.path} returned {task} of shape {array.shape} for a batch of {n}; "
                f"expected {_EXPECTED_OUTPUT[task].replace('N', str(n))}",
                path=str(self.path),
            )
        return array

    def predict(self, image_bgr: np.ndarray) -> dict[str, np.ndarray]:
        """Run one BGR image of any size; returns task -> array at the image's size."""
        chw, info = preprocess(image_bgr)
        raw = self.run(chw[None])
        return postprocess({task: value[0] for task, value in raw.items()}, info)


_models: dict[tuple[Any, ...], DavidModel] = {}
_models_lock = threading.Lock()


def load_model(
    path: str | os.PathLike[str],
    task: str | None = None,
    device: str = "auto",
    threads: int | None = None,
) -> DavidModel:
    """Load a model once per process per (file, task, device, threads) and reuse it."""
    file = Path(path).resolve()
    try:
        stat = file.stat()
    except OSError as exc:
        raise ModelError(
            f"model file {file} does not exist or cannot be read ({exc.strerror or exc}); "
            "fetch a released model with 'david-data models fetch NAME'",
            path=str(file),
        ) from exc
    key = (str(file), stat.st_size, stat.st_mtime_ns, task, resolve_device(device), threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = DavidModel(file, task, device, threads)
            _models[key] = model
    return model


STAGE_CPU_MS = 13.0
"""CPU ms per image of the work beside the model in a batch run (read and decode,
pre-process, post-process, encode, write) for a SynthHuman-sized 384 x 512 input and the
multi-task model: the one-thread stage table of ``benchmarks/bench_infer.py``."""


def split_threads(model_cpu_ms: float, cores: int) -> int | None:
    """Intra-op threads for a model that costs ``model_cpu_ms`` CPU per image when the
    stages of a batch run (``STAGE_CPU_MS``) share the ``cores`` with it: the model's share
    of the work, in cores; None (ORT's default, every core) when that is all of them.

    ORT's parallel loops cost CPU of their own when the cores are shared and only pay when a
    core would otherwise wait: with a cheap model the stages beside it keep the other cores
    busy, with a costly one (a ViT: seconds per image) the model should have every core.
    Measured on 2 busy cores (load ~3.5) with the tiny test model, the batch path with 1
    thread instead of 2: 34.0 -> 30.0 CPU ms per image, 43.5 -> 58.0 images/s (medians of
    4 interleaved rounds)."""
    share = model_cpu_ms / (model_cpu_ms + STAGE_CPU_MS)
    threads = max(1, round(cores * share))
    return None if threads >= cores else threads


def cpu_cores() -> int:
    """Cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


_pipeline_threads: dict[tuple[Any, ...], int | None] = {}


def pipeline_threads(path: str | os.PathLike[str], task: str | None, device: str) -> int | None:
    """Intra-op threads for ``path``'s model in a batch run on this machine (once per
    process and file): None (ORT's default) on a GPU; on the CPU :func:`split_threads` of
    the CPU one call of one image takes here with ORT's default threads (the least of up
    to 4 calls, one for a model that takes seconds)."""
    resolved = resolve_device(device)
    if resolved != "cpu":
        return None
    file = Path(path).resolve()
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns, task)
    with _models_lock:
        if key in _pipeline_threads:
            return _pipeline_threads[key]
    model = load_model(file, task, "cpu")
    batch = np.zeros((1, 3, _S, _S), np.float32)
    costs: list[float] = []
    while len(costs) < 4 and sum(costs) < 1000:  # the first call allocates: the best of a
        start = time.process_time()  # few, or one call only for a model that costs seconds
        model.run(batch)
        costs.append((time.process_time() - start) * 1000)
    threads = split_threads(min(costs), cpu_cores())
    with _models_lock:
        _pipeline_threads[key] = threads
    return threads


def batch_model(
    path: str | os.PathLike[str], task: str | None, device: str, threads: int | None = None
) -> DavidModel:
    """The model a batch run uses: :func:`load_model` with ``threads`` intra-op threads, or
    as many as :func:`pipeline_threads` gives on this machine (the plan makes it, so the
    run's batches find it loaded)."""
    return load_model(path, task, device, threads or pipeline_threads(path, task, device))
