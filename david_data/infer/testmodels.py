"""Small ONNX models shaped like the DAViD models, for tests, demos and benchmarks.

The released models are 430 MB to 1.3 GB and must never be downloaded by tests, so these
builders write stand-ins with the same interface (input (N, 3, 512, 512) float32 BGR,
outputs as FORMAT.md describes):

- ``build_tiny_model``: a 3x3 conv and a 1x1 head per task (random weights, a few ms per
  image), or with ``analytic=True`` 1x1 convolutions whose outputs are known functions of
  the input pixels, so a test can compute the expected values independently::

      depth       (B + G + R) / 3                      (N, 512, 512)
      normal      (B - 0.5, G - 0.5, 1)                 (N, 3, 512, 512), before normalising
      foreground  1.5 * R - 0.25                        (N, 1, 512, 512), before clipping

- ``build_vit_b16``: a ViT-B/16 encoder at 512 x 512 (1024 tokens x 768, 12 blocks, 12
  heads, MLP 3072) with random weights and a light pixel-shuffle depth head: about 107
  GMACs and 345 MB, the compute of a real DAViD-Base model, for benchmarks only.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from .._extras import require
from ..errors import ConfigError
from ..facts import MODEL_INPUT_SIZE, MODEL_TASKS

if TYPE_CHECKING:
    from onnx import GraphProto, TensorProto

OPSET = 17
_S = MODEL_INPUT_SIZE

ANALYTIC_DEPTH_WEIGHTS = (1 / 3, 1 / 3, 1 / 3)
ANALYTIC_NORMAL = ((1.0, 0.0, 0.0, -0.5), (0.0, 1.0, 0.0, -0.5), (0.0, 0.0, 0.0, 1.0))
"""Rows (weight B, weight G, weight R, bias) of the analytic normal's X, Y, Z."""
ANALYTIC_FOREGROUND = (0.0, 0.0, 1.5, -0.25)
"""(weight B, weight G, weight R, bias) of the analytic foreground."""


def _helpers() -> tuple[ModuleType, type[TensorProto], ModuleType, ModuleType]:
    # onnx is imported lazily: only the demo, tests and benchmarks build models
    require("infer", "building an ONNX model", "onnx")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    return onnx, TensorProto, helper, numpy_helper


def build_tiny_model(
    path: str | os.PathLike[str],
    task: str,
    *,
    dynamic_batch: bool = True,
    analytic: bool = False,
    batch_size: int = 1,
    depth_channel_axis: bool = False,
    input_name: str = "input",
    seed: int = 0,
) -> Path:
    """Write a tiny model for ``task`` (depth, normal, foreground, multitask) to ``path``.

    ``dynamic_batch=False`` fixes the batch axis to ``batch_size``. ``depth_channel_axis``
    makes the depth output (N, 1, 512, 512) instead of (N, 512, 512). Returns the path.
    """
    if task not in MODEL_TASKS:
        raise ConfigError(f"unknown task {task!r}; expected one of {', '.join(MODEL_TASKS)}")
    onnx, TensorProto, helper, numpy_helper = _helpers()
    rng = np.random.default_rng(seed)
    batch: int | str = "N" if dynamic_batch else batch_size
    nodes, inits, outputs = [], [], []

    def add_init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    features = input_name
    channels = 3
    if not analytic:
        channels = 4
        w = add_init("stem_w", rng.normal(0, 0.3, (channels, 3, 3, 3)))
        b = add_init("stem_b", rng.normal(0, 0.1, channels))
        nodes.append(helper.make_node("Conv", [input_name, w, b], ["stem"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Tanh", ["stem"], ["features"]))
        features = "features"

    def head(name: str, out_channels: int) -> str:
        if analytic:
            rows = {
                "depth": [(*ANALYTIC_DEPTH_WEIGHTS, 0.0)],
                "normal": list(ANALYTIC_NORMAL),
                "foreground": [ANALYTIC_FOREGROUND],
            }[name]
            table = np.array(rows, np.float32)
            weights, bias = table[:, :3].reshape(out_channels, 3, 1, 1), table[:, 3]
        else:
            weights = rng.normal(0, 0.5, (out_channels, channels, 1, 1)).astype(np.float32)
            bias = rng.normal(0, 0.1, out_channels).astype(np.float32)
        w, b = add_init(f"{name}_w", weights), add_init(f"{name}_b", bias)
        nodes.append(helper.make_node("Conv", [features, w, b], [f"{name}_conv"]))
        return f"{name}_conv"

    for name in ("depth", "normal", "foreground") if task == "multitask" else (task,):
        if name == "depth":
            raw = head("depth", 1)
            if depth_channel_axis:
                nodes.append(helper.make_node("Identity", [raw], ["depth"]))
                shape = [batch, 1, _S, _S]
            else:
                inits.append(
                    numpy_helper.from_array(np.array([-1, _S, _S], np.int64), "depth_shape")
                )
                nodes.append(helper.make_node("Reshape", [raw, "depth_shape"], ["depth"]))
                shape = [batch, _S, _S]
        elif name == "normal":
            nodes.append(helper.make_node("Identity", [head("normal", 3)], ["normal"]))
            shape = [batch, 3, _S, _S]
        else:
            raw = head("foreground", 1)
            op = "Identity" if analytic else "Sigmoid"
            nodes.append(helper.make_node(op, [raw], ["foreground"]))
            shape = [batch, 1, _S, _S]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))

    graph = helper.make_graph(
        nodes,
        f"tiny_{task}{'_analytic' if analytic else ''}",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, _S, _S])],
        outputs,
        inits,
    )
    return _save(onnx, helper, graph, path)


def _save(
    onnx: ModuleType, helper: ModuleType, graph: GraphProto, path: str | os.PathLike[str]
) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, target)
    return target


def vit_b16_gmacs(
    image: int = _S, dim: int = 768, depth: int = 12, mlp: int = 3072, patch: int = 16
) -> float:
    """Multiply-accumulates (in billions) of one image through ``build_vit_b16``'s model."""
    tokens = (image // patch) ** 2
    embed = tokens * dim * 3 * patch * patch
    block = (
        tokens * dim * 3 * dim
        + 2 * tokens * tokens * dim
        + tokens * dim * dim
        + 2 * tokens * dim * mlp
    )
    head = tokens * dim * patch * patch
    return (embed + depth * block + head) / 1e9


def build_vit_b16(
    path: str | os.PathLike[str], seed: int = 0, *, dynamic_batch: bool = True
) -> Path:
    """Write a ViT-B/16 depth model at 512 x 512 with random weights (~107 GMACs, ~345 MB).

    Patch embedding (16 x 16 conv, stride 16) -> 1024 tokens x 768 + position embedding,
    12 pre-norm transformer blocks (12 heads, MLP 3072, GELU), LayerNorm, then a linear
    head giving each token's 16 x 16 pixels, rearranged to (N, 512, 512).
    """
    onnx, TensorProto, helper, numpy_helper = _helpers()
    rng = np.random.default_rng(seed)
    dim, heads, mlp, patch, blocks = 768, 12, 3072, 16, 12
    grid = _S // patch
    tokens = grid * grid
    head_dim = dim // heads
    nodes, inits = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(name: str, *shape: int) -> str:
        return const(name, (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32))

    def zeros(name: str, n: int) -> str:
        return const(name, np.zeros(n, np.float32))

    def ones(name: str, n: int) -> str:
        return const(name, np.ones(n, np.float32))

    def shape(name: str, *dims: int) -> str:
        return const(name, np.array(dims, np.int64))

    def node(op: str, inputs: list[str], output: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def linear(x: str, name: str, n_in: int, n_out: int) -> str:
        y = node("MatMul", [x, weight(f"{name}_w", n_in, n_out)], f"{name}_mm")
        return node("Add", [y, zeros(f"{name}_b", n_out)], f"{name}_out")

    def layer_norm(x: str, name: str) -> str:
        return node(
            "LayerNormalization",
            [x, ones(f"{name}_g", dim), zeros(f"{name}_b", dim)],
            f"{name}_out",
            axis=-1,
            epsilon=1e-6,
        )

    x = node(
        "Conv",
        ["input", weight("patch_w", dim, 3, patch, patch), zeros("patch_b", dim)],
        "patches",
        kernel_shape=[patch, patch],
        strides=[patch, patch],
    )
    x = node("Reshape", [x, shape("s_tokens", 0, dim, tokens)], "patches_flat")
    x = node("Transpose", [x], "tokens0", perm=[0, 2, 1])
    x = node("Add", [x, weight("pos_embed", 1, tokens, dim)], "tokens_pos")
    scale = const("attn_scale", np.array(head_dim**-0.5, np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    half, one = const("half", np.array(0.5, np.float32)), const("one", np.array(1.0, np.float32))
    qkv_shape = shape("s_qkv", 0, tokens, 3, heads, head_dim)
    merge_shape = shape("s_merge", 0, tokens, dim)
    for i in range(blocks):
        p = f"b{i}"
        h = layer_norm(x, f"{p}_ln1")
        qkv = node("Reshape", [linear(h, f"{p}_qkv", dim, 3 * dim), qkv_shape], f"{p}_qkv_r")
        qkv = node("Transpose", [qkv], f"{p}_qkv_t", perm=[2, 0, 3, 1, 4])  # (3, N, H, T, D)
        q, k, v = (
            node("Gather", [qkv, const(f"{p}_i{j}", np.array(j, np.int64))], f"{p}_{n}", axis=0)
            for j, n in enumerate("qkv")
        )
        kt = node("Transpose", [k], f"{p}_kt", perm=[0, 1, 3, 2])
        scores = node("Mul", [node("MatMul", [q, kt], f"{p}_qk"), scale], f"{p}_scores")
        attn = node("Softmax", [scores], f"{p}_attn", axis=-1)
        o = node(
            "Transpose", [node("MatMul", [attn, v], f"{p}_av")], f"{p}_av_t", perm=[0, 2, 1, 3]
        )
        o = linear(node("Reshape", [o, merge_shape], f"{p}_merged"), f"{p}_proj", dim, dim)
        x = node("Add", [x, o], f"{p}_res1")
        h = linear(layer_norm(x, f"{p}_ln2"), f"{p}_fc1", dim, mlp)
        erf = node("Erf", [node("Div", [h, sqrt2], f"{p}_scaled")], f"{p}_erf")
        gelu = node(
            "Mul",
            [node("Mul", [h, half], f"{p}_halfx"), node("Add", [erf, one], f"{p}_erf1")],
            f"{p}_gelu",
        )
        x = node("Add", [x, linear(gelu, f"{p}_fc2", mlp, dim)], f"{p}_res2")
    x = linear(layer_norm(x, "final_ln"), "head", dim, patch * patch)  # (N, T, 256)
    x = node("Reshape", [x, shape("s_pix", 0, grid, grid, patch, patch)], "head_grid")
    x = node("Transpose", [x], "head_pix", perm=[0, 1, 3, 2, 4])
    node("Reshape", [x, shape("s_out", 0, _S, _S)], "depth")
    batch: int | str = "N" if dynamic_batch else 1
    graph = helper.make_graph(
        nodes,
        "vit_b16_depth_random",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, _S, _S])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [batch, _S, _S])],
        inits,
    )
    return _save(onnx, helper, graph, path)
