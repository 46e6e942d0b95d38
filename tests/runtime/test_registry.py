"""Model registry against a real loopback host: list, fetch (resumable downloader), cache, resolve;
and the quick CLI commands `models list|fetch` and `predict`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from david_data.cli import main
from david_data.errors import ConfigError, ModelError
from david_data.facts import MODELS
from david_data.infer import fetch, list_models, load_model, resolve_model
from david_data.infer.testmodels import build_tiny_model
from david_data.synth.host import LocalHost


@pytest.fixture()
def host(tmp_path: Path) -> Iterator[LocalHost]:
    """Serves <tmp>/www with a tiny depth and multitask model under the released file names."""
    www = tmp_path / "www" / "models"
    build_tiny_model(www / MODELS["depth-base"].file, "depth", seed=1)
    build_tiny_model(www / MODELS["multitask-large"].file, "multitask", analytic=True)
    with LocalHost(tmp_path / "www") as served:
        yield served


@pytest.fixture()
def env(tmp_path: Path, host: LocalHost, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cache dir and models URL pointing at the loopback host, as a user would set them."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(cache))
    monkeypatch.setenv("DAVID_DATA_MODELS_URL", host.base_url + "models/")
    return cache


def _gets(host: LocalHost, name: str) -> int:
    return sum(1 for r in host.stats.requests if r.method == "GET" and r.path.endswith(name))


def test_list_fetch_cache_resolve(env: Path, host: LocalHost, tmp_path: Path) -> None:
    entries = {e.name: e for e in list_models()}
    assert set(entries) == set(MODELS)
    depth = entries["depth-base"]
    assert (depth.task, depth.size_mb, depth.gmacs) == ("depth", 428.42, 172.4)
    assert depth.url == host.base_url + "models/depth-model-vitb16_384.onnx"
    assert depth.path == env / "models" / "depth-model-vitb16_384.onnx" and not depth.cached
    with pytest.raises(ModelError, match="david-data models fetch depth-base"):
        resolve_model("depth-base", None, None)

    results = fetch(["depth-base"])
    assert [(r.name, r.status) for r in results] == [("depth-base", "fetched")]
    served = (tmp_path / "www" / "models" / MODELS["depth-base"].file).read_bytes()
    assert depth.path.read_bytes() == served and results[0].size == len(served)
    assert {e.name: e.cached for e in list_models()}["depth-base"] is True
    gets = _gets(host, "depth-model-vitb16_384.onnx")
    assert gets >= 1

    again = fetch(["depth-base"])
    assert again[0].status == "cached"
    assert _gets(host, "depth-model-vitb16_384.onnx") == gets  # nothing downloaded again

    path, task = resolve_model("depth-base", None, None)
    assert (Path(path), task) == (depth.path, "depth")
    model = load_model(path, task)
    assert model.sha256 == results[0].sha256
    assert model.predict(np.zeros((50, 60, 3), np.uint8))["depth"].shape == (50, 60)


def test_fetch_to_dir_with_base_url_and_failures(host: LocalHost, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    results = fetch(["multitask-large", "depth-large"], target, base_url=host.base_url + "models")
    status = {r.name: r for r in results}
    assert status["multitask-large"].status == "fetched"
    assert (target / MODELS["multitask-large"].file).is_file()
    assert status["depth-large"].status == "failed" and "404" in (status["depth-large"].error or "")
    assert not (target / MODELS["depth-large"].file).exists()
    path, task = resolve_model("multitask-large", None, None, dir=target)
    assert task == "multitask" and load_model(path, task).tasks == ("depth", "normal", "foreground")
    with pytest.raises(
        ConfigError, match="unknown model 'depth-huge'; released models: foreground-base"
    ):
        fetch(["depth-huge"], target, base_url=host.base_url)


def test_resolve_model_arguments(tmp_path: Path) -> None:
    file = build_tiny_model(tmp_path / "any.onnx", "normal")
    assert resolve_model(None, file, "normal") == (str(file), "normal")
    assert resolve_model(None, str(file), None) == (str(file), None)
    with pytest.raises(ConfigError, match="exactly one of --model NAME"):
        resolve_model("depth-base", file, None)
    with pytest.raises(ConfigError, match="exactly one of --model NAME"):
        resolve_model(None, None, None)
    with pytest.raises(ConfigError, match="is a depth model, not normal"):
        resolve_model("depth-base", None, "normal")
    with pytest.raises(ConfigError, match="unknown task 'segmentation'"):
        resolve_model(None, file, "segmentation")
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(None, tmp_path / "nope.onnx", None)


def test_cli_models_list_and_fetch(
    env: Path, host: LocalHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "depth-base" in out and "multitask-large" in out and "428.42" in out and "389.9" in out
    assert host.base_url + "models/depth-model-vitb16_384.onnx" in out
    assert all(line.split()[4] == "no" for line in out.splitlines()[1:8])

    assert main(["models", "fetch", "depth-base", "--no-progress"]) == 0
    assert "depth-base: fetched" in capsys.readouterr().out
    main(["models", "list"])
    rows = {line.split()[0]: line.split()[4] for line in capsys.readouterr().out.splitlines()[1:8]}
    assert rows["depth-base"] == "yes" and rows["normal-base"] == "no"

    assert main(["models", "fetch", "normal-base", "--no-progress"]) == 1  # not served: 404
    assert "normal-base: FAILED" in capsys.readouterr().out
    assert main(["models", "fetch", "bogus"]) == 2
    assert "unknown model 'bogus'" in capsys.readouterr().err


def test_cli_predict_writes_panels(
    env: Path, tmp_path: Path, real_tiles: list[np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), real_tiles[0][:, :300])
    files = {
        t: build_tiny_model(tmp_path / f"{t}.onnx", t)
        for t in ("depth", "normal", "foreground", "multitask")
    }
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(image),
            "--depth-model",
            str(files["depth"]),
            "--normal-model",
            str(files["normal"]),
            "--foreground-model",
            str(files["foreground"]),
            "--multitask-model",
            str(files["multitask"]),
            "-o",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["person.comparison.png", "person.individual.png", "person.multitask.png"]
    individual = cv2.imread(str(out / "person.individual.png"))
    comparison = cv2.imread(str(out / "person.comparison.png"))
    assert individual.shape[0] >= 512 and individual.shape[1] >= 4 * 300 * 0.9  # input + 3 outputs
    assert comparison.shape[0] > individual.shape[0]

    assert main(["predict", str(image), "--depth-model", str(files["depth"]), "-o", str(out)]) == 0
    assert (out / "person.prediction.png").is_file()
    assert main(["predict", str(image), "--model", "depth-base", "-o", str(out)]) == 2
    assert "david-data models fetch depth-base" in capsys.readouterr().err
    assert main(["predict", str(image), "-o", str(out)]) == 2
    assert "no model given" in capsys.readouterr().err
    assert (
        main(["predict", str(tmp_path / "missing.jpg"), "--depth-model", str(files["depth"])]) == 2
    )
    assert (
        main(["predict", str(image), "--depth-model", str(files["depth"]), "--device", "cuda"]) == 2
    )
