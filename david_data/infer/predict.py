"""Single-image prediction: the official demo's job, headless.

Runs individual task models and/or a multi-task model on one image and writes the
demo's panels (and the individual-versus-multi-task comparison when both are given).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import fsutil
from ..errors import ConfigError
from .images import decode_image
from .model import load_model
from .registry import resolve_model


@dataclass(frozen=True, kw_only=True)
class ModelChoice:
    """Which models to run: individual ones by task, and/or one multi-task model.

    Each entry is ``(file, label)``; the label names the model in the panels.
    """

    individual: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    multitask: tuple[str, str] | None = None


def choose_models(
    names: Sequence[str] = (),
    *,
    multitask_model: str | None = None,
    task_models: Mapping[str, str | None] | None = None,
    cache_dir: str | None = None,
) -> ModelChoice:
    """Resolve released model names and/or ONNX files into a :class:`ModelChoice`.

    ``task_models`` maps ``depth``/``foreground``/``normal`` to a file (or None).
    """
    individual: dict[str, tuple[str, str]] = {}
    multitask: tuple[str, str] | None = None
    for name in names:
        file, task = resolve_model(name, None, None, dir=cache_dir)
        if task == "multitask":
            if multitask is not None:
                raise ConfigError("give at most one multi-task model")
            multitask = (file, name)
        elif task in individual:
            raise ConfigError(
                f"two {task} models given ({individual[task][1]} and {name}); give one per task"
            )
        else:
            individual[task or ""] = (file, name)
    if multitask_model:
        if multitask is not None:
            raise ConfigError(
                "give at most one multi-task model (--model NAME or --multitask-model FILE)"
            )
        multitask = (
            resolve_model(None, multitask_model, "multitask")[0],
            Path(multitask_model).name,
        )
    for task, task_file in (task_models or {}).items():
        if not task_file:
            continue
        if task in individual:
            raise ConfigError(f"two {task} models given; give one per task")
        individual[task] = (resolve_model(None, task_file, task)[0], Path(task_file).name)
    if not individual and multitask is None:
        raise ConfigError(
            "no model given: use --model NAME..., --multitask-model FILE, or any of "
            "--depth-model / --foreground-model / --normal-model FILE"
        )
    return ModelChoice(individual=individual, multitask=multitask)


def predict_image(
    image_url: str,
    models: ModelChoice,
    output_dir: str,
    *,
    device: str = "auto",
    threads: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Run ``models`` on one image and write its panels under ``output_dir``.

    Writes ``STEM.prediction.png``, or, when both individual and multi-task models are
    given, ``STEM.individual.png``, ``STEM.multitask.png`` and ``STEM.comparison.png``.
    Returns the URLs written.
    """
    from ..vis import comparison_panel, encode_png, prediction_panel

    fs, path = fsutil.resolve(image_url, storage_options)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise ConfigError(f"image {image_url} does not exist") from None
    image = decode_image(data, image_url)
    stem = os.path.splitext(os.path.basename(path))[0]

    individual: dict[str, np.ndarray] = {}
    for task, (file, label) in models.individual.items():
        outputs = load_model(file, task, device, threads).predict(image)
        if task not in outputs:
            raise ConfigError(f"{label} gives {', '.join(outputs)}, not {task}")
        individual[task] = outputs[task]
    multitask = (
        load_model(models.multitask[0], "multitask", device, threads).predict(image)
        if models.multitask
        else {}
    )

    panels: dict[str, bytes] = {}
    if individual:
        title = "Individual models: " + ", ".join(label for _, label in models.individual.values())
        panels["individual" if multitask else "prediction"] = encode_png(
            prediction_panel(image, individual, title)
        )
    if multitask and models.multitask:
        title = f"Multi-task model: {models.multitask[1]}"
        panels["multitask" if individual else "prediction"] = encode_png(
            prediction_panel(image, multitask, title)
        )
    if individual and multitask:
        panels["comparison"] = encode_png(comparison_panel(image, individual, multitask))
    out_fs, out_dir = fsutil.resolve(output_dir, storage_options)
    written = []
    for kind, png in panels.items():
        target = fsutil.join(out_dir, f"{stem}.{kind}.png")
        fsutil.atomic_write_bytes(out_fs, target, png)
        written.append(fsutil.to_url(out_fs, target))
    return written
