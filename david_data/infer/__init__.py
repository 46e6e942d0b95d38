"""Running the DAViD ONNX models: the reference runtime's processing, sessions, models.

Typical use::

    from david_data.infer import decode_image, load_model, resolve_model

    path, task = resolve_model("depth-base", None, None)     # fetched beforehand
    model = load_model(path, task)                            # once per process
    outputs = model.predict(decode_image(data, "photo.jpg"))  # {"depth": (H, W) float32}

Batch code uses the pieces: ``preprocess`` per image, ``model.run`` on a stacked batch,
``postprocess`` per image.
"""

from .images import decode_image
from .model import DavidModel, file_sha256, load_model
from .registry import (
    FetchResult,
    ModelEntry,
    cached_path,
    fetch,
    list_models,
    models_dir,
    resolve_model,
)
from .runtime import PadInfo, postprocess, preprocess
from .session import DEVICES, get_session, resolve_device
from .testmodels import build_tiny_model, build_vit_b16

__all__ = [
    "DEVICES",
    "DavidModel",
    "FetchResult",
    "ModelEntry",
    "PadInfo",
    "build_tiny_model",
    "build_vit_b16",
    "cached_path",
    "decode_image",
    "fetch",
    "file_sha256",
    "get_session",
    "list_models",
    "load_model",
    "models_dir",
    "postprocess",
    "preprocess",
    "resolve_device",
    "resolve_model",
]
