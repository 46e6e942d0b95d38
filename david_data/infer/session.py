"""ONNX Runtime sessions: one per process per (model file, device, threads), reused.

Devices map to execution providers::

    cpu       CPUExecutionProvider
    cuda      CUDAExecutionProvider (then CPU for the few ops CUDA lacks)
    tensorrt  TensorrtExecutionProvider, then CUDA, then CPU
    auto      cuda when onnxruntime offers CUDA, else cpu

Asking for a GPU that onnxruntime does not offer is a DeviceError, and so is a session
that came up without it (ORT falls back to CPU with only a log line when the CUDA
libraries fail to load): the requested provider must be the session's first.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from .._extras import require
from ..errors import ConfigError, DeviceError, ModelError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_INSTALL_HINT = {
    "cuda": "install onnxruntime-gpu (pip install onnxruntime-gpu) with a matching CUDA and cuDNN",
    "tensorrt": "install onnxruntime-gpu built with TensorRT and the TensorRT libraries",
}

_sessions: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def _ort() -> Any:
    require("infer", "running an ONNX model")
    import onnxruntime

    return onnxruntime


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers, in its order."""
    return list(_ort().get_available_providers())


def resolve_device(device: str) -> str:
    """Map ``auto`` to ``cuda`` or ``cpu``; check the others are valid and available."""
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    available = available_providers()
    if device == "auto":
        return "cuda" if "CUDAExecutionProvider" in available else "cpu"
    wanted = _PROVIDERS[device][0]
    if wanted not in available:
        raise DeviceError(
            f"device {device!r} needs {wanted}, which this onnxruntime does not offer "
            f"(available: {', '.join(available)}); {_INSTALL_HINT.get(device, '')}, "
            "or run with --device cpu",
            device=device,
        )
    return device


def providers_for(device: str) -> list[str]:
    """The provider list for a resolved device, keeping only those available."""
    available = set(available_providers())
    return [p for p in _PROVIDERS[device] if p in available]


def get_session(
    path: str | os.PathLike[str], device: str = "auto", threads: int | None = None
) -> Any:
    """The process's InferenceSession for a local ONNX file on ``device``, created once.

    ``threads`` sets ORT's intra-op threads (None = ORT's default, one per core).
    Raises DeviceError when the device is unavailable, ModelError when ORT cannot load the file.
    """
    resolved = resolve_device(device)
    file = Path(path).resolve()
    try:
        stat = file.stat()
    except OSError as exc:
        raise ModelError(
            f"model file {file} cannot be read: {exc.strerror or exc}", path=str(file)
        ) from exc
    key = (str(file), stat.st_size, stat.st_mtime_ns, resolved, threads)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            session = _create(file, resolved, threads)
            _sessions[key] = session
    return session


def session_options(threads: int | None) -> Any:
    """The options every session gets: ``threads`` intra-op threads (None: ORT's default),
    and no spinning. By default ORT's pool threads spin for a while after each call, waiting
    for the next; on a machine whose cores also decode, pre-process and write (every batch
    run, and any loop around ``predict``), that spinning takes those cores. Measured on 2
    cores with a tiny model (``benchmarks/bench_infer.py``, medians of 5 interleaved rounds):
    the batch path 1.21x faster without spinning (68 -> 52 CPU ms per image), the model
    alone 1.03x (30 -> 26 CPU ms); spinning had slowed the pre-processing that follows a
    call from 3 to 9.7 ms."""
    options = _ort().SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _create(file: Path, device: str, threads: int | None) -> Any:
    ort = _ort()
    options = session_options(threads)
    providers = providers_for(device)
    try:
        session = ort.InferenceSession(str(file), sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
        raise ModelError(
            f"onnxruntime cannot load model {file}: {str(exc).strip()[:500]}; "
            "check that it is a complete ONNX file (fetch it again if it was downloaded)",
            path=str(file),
        ) from exc
    active = session.get_providers()
    if not active or active[0] != providers[0]:
        raise DeviceError(
            f"requested device {device!r} ({providers[0]}) but the session for {file} runs on "
            f"{', '.join(active) or 'nothing'}: the provider failed to initialise (see the "
            "onnxruntime log above); fix the GPU libraries or run with --device cpu",
            device=device,
        )
    logger.debug("loaded %s on %s (threads=%s)", file.name, ", ".join(active), threads or "default")
    return session


def clear_sessions() -> None:
    """Drop all cached sessions (frees their memory; tests use it)."""
    with _lock:
        _sessions.clear()
