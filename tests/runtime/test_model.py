"""DavidModel: tasks read from outputs, batching, shape checks, devices, the process cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from david_data.errors import ConfigError, DeviceError, ModelError
from david_data.infer import DavidModel, file_sha256, get_session, load_model, preprocess
from david_data.infer.testmodels import build_tiny_model


def _batch(tiles: list[np.ndarray], n: int = 5) -> np.ndarray:
    return np.stack([preprocess(tiles[i % len(tiles)][i * 7 :])[0] for i in range(n)])


@pytest.mark.parametrize(
    ("key", "task", "tasks"),
    [
        ("depth", "depth", ("depth",)),
        ("depth-c1", "depth", ("depth",)),
        ("normal", "normal", ("normal",)),
        ("foreground", "foreground", ("foreground",)),
        ("multitask", "multitask", ("depth", "normal", "foreground")),
    ],
)
def test_tasks_are_read_from_outputs(
    models: dict[str, Path], key: str, task: str, tasks: tuple
) -> None:
    model = load_model(models[key])
    assert model.task == task and model.tasks == tasks
    out = model.run(np.zeros((2, 3, 512, 512), np.float32))
    shapes = {"depth": (2, 512, 512), "normal": (2, 3, 512, 512), "foreground": (2, 512, 512)}
    assert {t: v.shape for t, v in out.items()} == {t: shapes[t] for t in tasks}


def test_fixed_and_dynamic_batch_give_identical_results(
    models: dict[str, Path], real_tiles: list[np.ndarray]
) -> None:
    batch = _batch(real_tiles, 5)
    dynamic = load_model(models["multitask"])
    fixed1 = load_model(models["multitask-fixed"])
    fixed2 = load_model(models["multitask-fixed2"])  # input named pixel_values; last chunk padded
    assert dynamic.batch_size is None and fixed1.batch_size == 1 and fixed2.batch_size == 2
    assert fixed2.signature.input_name == "pixel_values"
    a, b, c = dynamic.run(batch), fixed1.run(batch), fixed2.run(batch)
    singles = [dynamic.run(batch[i : i + 1]) for i in range(len(batch))]
    for task in dynamic.tasks:
        assert a[task].shape[0] == 5
        np.testing.assert_allclose(a[task], b[task], rtol=0, atol=1e-6)
        np.testing.assert_allclose(a[task], c[task], rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            a[task], np.concatenate([s[task] for s in singles]), rtol=0, atol=1e-6
        )
        assert not np.allclose(a[task][0], a[task][1])  # different images, different outputs
    analytic = load_model(models["multitask-analytic"]).run(batch)
    analytic2 = load_model(models["multitask-analytic-fixed2"]).run(batch)
    for task in analytic:
        np.testing.assert_array_equal(analytic[task], analytic2[task])
    np.testing.assert_allclose(analytic["depth"], batch.mean(axis=1), atol=1e-6)


def test_predict_returns_input_size(models: dict[str, Path], real_tiles: list[np.ndarray]) -> None:
    out = load_model(models["normal"]).predict(real_tiles[0][:200, :350])
    assert out["normal"].shape == (200, 350, 3)
    np.testing.assert_allclose(np.linalg.norm(out["normal"], axis=-1), 1, atol=1e-4)


def test_load_model_is_cached_per_process(models: dict[str, Path]) -> None:
    a = load_model(models["depth"], None, "cpu")
    assert load_model(str(models["depth"]), None, "cpu") is a
    assert (
        load_model(models["depth"], "depth", "cpu").session is a.session
    )  # one session per file/device
    assert get_session(models["depth"], "cpu") is a.session
    assert a.sha256 == file_sha256(models["depth"]) and len(a.sha256) == 64
    assert a.sha256 != load_model(models["normal"]).sha256


def test_cuda_or_tensorrt_without_gpu_is_a_device_error(models: dict[str, Path]) -> None:
    available = onnxruntime.get_available_providers()
    for device, provider in (
        ("cuda", "CUDAExecutionProvider"),
        ("tensorrt", "TensorrtExecutionProvider"),
    ):
        if provider in available:
            continue
        with pytest.raises(DeviceError, match=f"device '{device}' needs {provider}"):
            load_model(models["depth"], device=device)
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        load_model(models["depth"], device="gpu")
    if "CUDAExecutionProvider" not in available:
        assert load_model(models["depth"], device="auto").providers == ["CPUExecutionProvider"]


# --- models that do not fit -----------------------------------------------------------------


def _write(path: Path, inputs: list[tuple[str, list]], outputs: list[tuple[str, list]]) -> Path:
    """A model whose outputs are slices/reshapes of its (first) input, shaped as declared."""
    nodes, inits = [], []
    x = inputs[0][0]
    for name, shape in outputs:
        target = [d if isinstance(d, int) else -1 for d in shape]
        inits.append(
            helper.make_tensor(
                f"{name}_n", TensorProto.INT64, [1], [int(np.prod([d for d in target if d > 0]))]
            )
        )
        inits.append(helper.make_tensor(f"{name}_s", TensorProto.INT64, [len(target)], target))
        nodes.append(helper.make_node("Flatten", [x], [f"{name}_f"], axis=1))
        start = helper.make_tensor(f"{name}_z", TensorProto.INT64, [1], [0])
        one = helper.make_tensor(f"{name}_one", TensorProto.INT64, [1], [1])
        inits += [start, one]
        nodes.append(
            helper.make_node(
                "Slice", [f"{name}_f", f"{name}_z", f"{name}_n", f"{name}_one"], [f"{name}_sl"]
            )
        )
        nodes.append(helper.make_node("Reshape", [f"{name}_sl", f"{name}_s"], [name]))
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


GOOD_IN = [("input", ["N", 3, 512, 512])]


@pytest.mark.parametrize(
    ("inputs", "outputs", "task", "message"),
    [
        (
            [("input", ["N", 3, 512])],
            [("depth", ["N", 512])],
            None,
            r"input 'input' has shape \(N, 3, 512\); expected \(N, 3, 512, 512\)",
        ),
        (
            [("input", ["N", 4, 512, 512])],
            [("depth", ["N", 512, 512])],
            None,
            r"has shape \(N, 4, 512, 512\); expected \(N, 3, 512, 512\)",
        ),
        (
            [("input", [1, 3, 256, 256])],
            [("depth", [1, 256, 256])],
            None,
            r"has shape \(1, 3, 256, 256\); expected \(N, 3, 512, 512\)",
        ),
        (
            GOOD_IN + [("extra", ["N", 3, 512, 512])],
            [("depth", ["N", 512, 512])],
            None,
            r"has 2 inputs .*expected one input \(N, 3, 512, 512\)",
        ),
        (
            GOOD_IN,
            [("a", ["N", 512, 512]), ("b", ["N", 512, 512])],
            None,
            r"outputs \[a \(N, 512, 512\), b \(N, 512, 512\)\]; a DAViD model has one output",
        ),
        (
            GOOD_IN,
            [("normal", ["N", 2, 512, 512])],
            "normal",
            r"output 'normal' has shape \(N, 2, 512, 512\); expected normal \(N, 3, 512, 512\)",
        ),
        (GOOD_IN, [("depth", ["N", 512, 512])], "normal", r"expected normal \(N, 3, 512, 512\)"),
        (
            GOOD_IN,
            [("depth", ["N", 512, 512])],
            "multitask",
            r"has 1 output\(s\) \[depth \(N, 512, 512\)\]; a multitask model has 3 \[depth .*normal \(N, 3, 512, 512\), foreground \(N, 1, 512, 512\)\]",
        ),
        (
            GOOD_IN,
            [("d", ["N", 512, 512]), ("n", ["N", 1, 512, 512]), ("f", ["N", 1, 512, 512])],
            None,
            r"output 'n' has shape \(N, 1, 512, 512\); expected normal \(N, 3, 512, 512\)",
        ),
        (
            GOOD_IN,
            [("out", ["N", 1, 512, 512])],
            None,
            r"fits both a depth and a foreground model; say which with --task",
        ),
    ],
)
def test_models_that_do_not_fit_name_what_was_expected(
    tmp_path: Path, inputs: list, outputs: list, task: str | None, message: str
) -> None:
    path = _write(tmp_path / "bad.onnx", inputs, outputs)
    with pytest.raises(ModelError, match=message) as info:
        DavidModel(path, task, "cpu")
    assert str(path) in str(info.value)


def test_output_shape_checked_at_load_and_at_run_time(tmp_path: Path) -> None:
    """Declared shapes are checked at load; shapes only known when run are checked then."""
    fixed = _write(tmp_path / "fixed.onnx", GOOD_IN, [("depth", ["N", 256, 256])])
    with pytest.raises(
        ModelError, match=r"output 'depth' has shape \(N, 256, 256\); expected depth"
    ):
        DavidModel(fixed, None, "cpu")
    # depth = the input's first channel cropped to half its height: the size is data-dependent
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "two"], ["height"], axis=0),
        helper.make_node("Div", ["height", "two"], ["half"]),
        helper.make_node("Slice", ["input", "zero", "half", "two"], ["cropped"]),
        helper.make_node("ReduceMean", ["cropped"], ["depth"], axes=[1], keepdims=0),
    ]
    inits = [
        helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("zero", 0), ("two", 2))
    ]
    graph = helper.make_graph(
        nodes,
        "dynamic",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 512, 512])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["N", "H", "W"])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "dynamic.onnx"))
    model = DavidModel(tmp_path / "dynamic.onnx", None, "cpu")
    with pytest.raises(
        ModelError,
        match=r"returned depth of shape \(2, 256, 512\) for a batch of 2; expected \(2, 512, 512\)",
    ):
        model.run(np.zeros((2, 3, 512, 512), np.float32))


def test_unreadable_and_missing_model_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(ModelError, match="onnxruntime cannot load model .*broken.onnx"):
        load_model(broken)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.onnx")
    tiny = build_tiny_model(tmp_path / "t.onnx", "depth")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(tiny.read_bytes()[:-100])
    with pytest.raises(ModelError, match="truncated.onnx"):
        load_model(truncated)


def test_run_rejects_wrong_batch_shapes(models: dict[str, Path]) -> None:
    model = load_model(models["depth"])
    with pytest.raises(ModelError, match=r"must be \(N, 3, 512, 512\); got \(3, 512, 512\)"):
        model.run(np.zeros((3, 512, 512), np.float32))
