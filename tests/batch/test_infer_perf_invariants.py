"""What the faster inference path must keep: outputs that decode to the same arrays, the
reference post-processing bit for bit, markers only over synced files, one commit per
model call, sessions that do not spin, the model's threads chosen for the work beside it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import imagecodecs
import numpy as np
import pytest

from david_data.exr import encode_exr, read_depth_exr, read_normal_exr
from david_data.fsutil import resolve
from david_data.infer._encode import exr_uncompressed, png_grey16
from david_data.infer._pipeline import ModelPipeline
from david_data.infer.model import split_threads
from david_data.infer.outputs import (
    commit_outputs,
    decode_foreground,
    encode_foreground,
    encode_outputs,
    write_outputs,
)
from david_data.infer.runtime import (
    NORMAL_EPS,
    _back_to_image,
    _plane,
    pad_info,
    postprocess_normal,
)
from david_data.infer.session import get_session

SHAPES = [(1, 1), (1, 9), (7, 1), (48, 64), (512, 384), (300, 7)]


@pytest.mark.parametrize("shape", SHAPES)
def test_uncompressed_exr_is_byte_for_byte_what_openexr_writes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    depth = (rng.normal(size=shape) * 100).astype(np.float32)
    normal = rng.normal(size=(*shape, 3)).astype(np.float32)
    depth.flat[0], normal.flat[-1] = np.nan, -np.inf
    assert exr_uncompressed(depth, ("Y",)) == encode_exr(depth, ("Y",), compression="none")
    ours = exr_uncompressed(normal, ("X", "Y", "Z"))
    assert ours == encode_exr(normal, ("X", "Y", "Z"), compression="none")
    assert np.array_equal(read_normal_exr(ours).pixels, normal, equal_nan=True)
    assert np.array_equal(
        read_depth_exr(exr_uncompressed(depth, ("Y",))).pixels, depth, equal_nan=True
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_foreground_png_decodes_to_the_same_values(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    mask = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    mask.flat[0], mask.flat[-1] = 0, 65535
    data = png_grey16(mask)
    by_opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert by_opencv.dtype == np.uint16 and np.array_equal(by_opencv, mask)
    assert np.array_equal(imagecodecs.png_decode(data), mask)  # libpng, another reader

    soft = rng.random(shape).astype(np.float32) * 1.2 - 0.1  # also outside [0, 1]
    expected = np.round(np.clip(soft, 0, 1) * 65535.0).astype(np.uint16)  # the old encoder's
    assert np.array_equal(decode_foreground(encode_foreground(soft)), expected / np.float32(65535))


def test_normal_postprocessing_is_the_reference_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    cases = [
        (512, 384, 1.0),
        (37, 1001, 1e-6),
        (900, 20, 1e3),
        (1, 1, 1.0),
        (1, 999, 1.0),
        (999, 1, 1.0),
    ]
    for height, width, scale in cases:
        raw = (rng.normal(size=(3, 512, 512)) * scale).astype(np.float32)
        raw[:, :8] = 0  # zero vectors: the epsilon matters
        info = pad_info(height, width)
        resized = _back_to_image(_plane(raw, "normal", 3), info)
        reference = resized / (np.linalg.norm(resized, axis=-1, keepdims=True) + NORMAL_EPS)
        ours = postprocess_normal(raw, info)
        assert ours.dtype == np.float32 and ours.flags.c_contiguous
        assert np.array_equal(ours, reference)


def test_sessions_do_not_spin_between_calls(models: dict[str, Path]) -> None:
    options = get_session(models["multitask"], "cpu").get_session_options()
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(key) == "0"


def _sets(root: Path, count: int) -> list:
    fs, base = resolve(str(root))
    rng = np.random.default_rng(0)
    outputs = {
        "depth": rng.random((24, 32), np.float32),
        "normal": rng.random((24, 32, 3), np.float32),
        "foreground": rng.random((24, 32), np.float32),
    }
    files = encode_outputs(outputs)
    return [
        write_outputs(
            fs,
            base,
            f"sub/img{i}.jpg",
            files,
            model_sha256="ab" * 32,
            input_url=f"img{i}",
            input_key="0123abcd",
        )
        for i in range(count)
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_markers_are_written_only_after_every_file_of_the_group_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = _sets(tmp_path, 3)
    files = {p for s in sets for p in s.paths.values()}
    assert not list(tmp_path.rglob("*.done"))  # written, not committed
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        assert not list(tmp_path.rglob("*.done")), "a marker exists before its files are synced"
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    commit_outputs(resolve(str(tmp_path))[0], sets)
    assert files <= set(synced)
    markers = sorted(tmp_path.rglob("*.done"))
    assert len(markers) == 3
    assert {json.loads(m.read_bytes())["input"] for m in markers} == {"img0", "img1", "img2"}


def test_a_group_with_a_file_that_cannot_be_synced_gets_no_marker(tmp_path: Path) -> None:
    sets = _sets(tmp_path, 2)
    os.unlink(sets[1].paths["normal"])  # e.g. removed by someone else before the commit
    with pytest.raises(FileNotFoundError):
        commit_outputs(resolve(str(tmp_path))[0], sets)
    assert not list(tmp_path.rglob("*.done"))


def test_commit_runs_once_per_model_call_and_failing_fails_only_that_call() -> None:
    calls: list[list[int]] = []

    def commit(results: list[tuple[str, int]]) -> list[tuple[str, int]]:
        calls.append([i for _, i in results])
        if 5 in calls[-1]:
            raise OSError("disk full")
        return [("committed", i) if s == "ok" else (s, i) for s, i in results]

    results = ModelPipeline(
        prepare=lambda i: (np.full((3, 1, 1), i, np.float32), None),
        run_model=lambda batch: {"depth": batch[:, 0]},
        finish=lambda i, out, ctx, s: ("ok", i) if i != 1 else 1 / 0,
        fail=lambda i, exc, s: (f"failed: {exc}", i),
        batch_size=3,
        threads=2,
        commit=commit,
    ).run(list(range(10)))
    assert calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert results == [
        ("committed", 0),
        ("failed: division by zero", 1),  # finish failed: commit passes it on
        ("committed", 2),
        ("failed: disk full", 3),
        ("failed: disk full", 4),
        ("failed: disk full", 5),
        ("committed", 6),
        ("committed", 7),
        ("committed", 8),
        ("committed", 9),
    ]


def test_a_cheap_model_leaves_cores_to_the_stages_and_a_costly_one_gets_them_all() -> None:
    assert split_threads(14.0, 2) == 1  # the tiny model on 2 cores: the stages get the other
    assert split_threads(3000.0, 2) is None  # a ViT: every core (ORT's default)
    assert split_threads(3000.0, 16) is None
    assert 1 < (split_threads(14.0, 16) or 16) < 16


def test_batches_run_the_model_with_the_threads_chosen_here_and_write_the_same_bytes(
    tmp_path: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_helpers import infer, write_images

    from david_data.infer import model as model_module
    from david_data.infer.batch import InferSettings

    folder = tmp_path / "in"
    rels = write_images(folder, 6)
    monkeypatch.setattr(model_module, "_pipeline_threads", {})
    monkeypatch.setattr(model_module, "cpu_cores", lambda: 2)
    monkeypatch.setattr(model_module, "STAGE_CPU_MS", 1e9)  # the stages dwarf any model
    loaded: list[int | None] = []
    real_load = model_module.load_model

    def spy(path: Any, task: Any = None, device: str = "auto", threads: Any = None) -> Any:
        loaded.append(threads)
        return real_load(path, task, device, threads)

    monkeypatch.setattr(model_module, "load_model", spy)
    outputs = {}
    for told in (None, 2):
        out = tmp_path / f"out-{told}"
        settings = InferSettings(
            input=str(folder),
            output=str(out),
            model_path=str(models["multitask"]),
            task="multitask",
            device="cpu",
            model_threads=told,
        )
        assert infer(settings).ok == len(rels)
        assert loaded[-1] == (told or 1)  # the batch's model: one thread unless told
        outputs[told] = {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in out.rglob("*")
            if p.suffix in (".exr", ".png")
        }
    assert len(outputs[None]) == 3 * len(rels) and outputs[None] == outputs[2]
