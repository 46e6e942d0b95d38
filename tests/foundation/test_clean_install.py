"""``pip install .`` into a clean virtual environment gives a working core: open_store,
query, catalog, fetch, mirror and convert run against a loopback host; importing the store
pulls no Prefect; no top-level ``flows`` module is installed; and a command that needs an
extra that is not installed says which one (one ``error:`` line, exit 2).

pip installs from the package index this machine is configured with (here a local one,
so the test runs offline) and reuses pip's cache: about 15 s on 2 cores."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from david_data.synth import SynthOptions, write_part
from david_data.synth.host import LocalHost

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = 4


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with only ``pip install .`` in it, made
    from a copy of the source so the build leaves nothing in the checkout."""
    work = tmp_path_factory.mktemp("clean-install")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("david_data", "flows"):  # flows/ is in the tree, and must not be installed
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        "pip install . failed (it needs a package index, here the one pip is configured "
        f"with):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return env_dir


def _run(
    env_dir: Path, cwd: Path, *args: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """``ARGS[0]`` from the clean venv's bin/, run outside the checkout (so nothing is
    imported from the source tree), with caches and the Prefect home under ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHON"))}
    env.update(
        DAVID_DATA_CACHE_DIR=str(cwd / "cache"),
        XDG_CACHE_HOME=str(cwd / "xdg"),
        PREFECT_HOME=str(cwd / "prefect-home"),  # no profile: no Prefect API configured
        **extra_env,
    )
    return subprocess.run(
        [str(env_dir / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_install_has_the_core_and_no_extras(clean_env: Path, tmp_path: Path):
    code = (
        "import importlib.util, sys\n"
        "import david_data.store\n"
        "extras = {'prefect', 'distributed', 'torch', 'onnxruntime', 'onnx', 'adlfs'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & extras))\n"
        "print(importlib.util.find_spec('flows'))\n"
        "print(importlib.util.find_spec('david_data.flows') is not None)\n"
    )
    assert _ok(_run(clean_env, tmp_path, "python", "-c", code)).splitlines() == [
        "[]",  # importing the store pulls no Prefect (nor any other extra)
        "None",  # no top-level flows module
        "True",  # the flows are in david_data's namespace
    ]
    site = next((clean_env / "lib").glob("python3*/site-packages"))
    assert not (site / "flows").exists()
    _ok(_run(clean_env, tmp_path, "python", "-m", "pip", "check"))


def test_core_commands_work_from_a_clean_install(clean_env: Path, tmp_path: Path):
    served, mirror, store, fetched = (tmp_path / n for n in ("served", "mirror", "store", "got"))
    served.mkdir()
    write_part(served / "SynthHuman_0000.zip", range(SAMPLES), SynthOptions(folder="SynthHuman"))
    count = "SELECT count(*) AS n FROM samples"
    with LocalHost(served) as host:
        url = host.base_url
        _ok(_run(clean_env, tmp_path, "david-data", "mirror", str(mirror), "--parts", "0",
                 "--base-url", url, "--no-progress"))  # fmt: skip
        zip_name = "SynthHuman_0000.zip"
        assert (mirror / zip_name).read_bytes() == (served / zip_name).read_bytes()
        out = _ok(_run(clean_env, tmp_path, "david-data", "catalog", count, "--base-url", url,
                       "--parts", "0", "--format", "csv"))  # fmt: skip
        assert out.split()[-1] == str(SAMPLES)
        _ok(_run(clean_env, tmp_path, "david-data", "fetch", str(fetched), "--base-url", url,
                 "--ids", "1-2", "--no-progress"))  # fmt: skip
        got = sorted(p.name for p in (fetched / "SynthHuman").glob("rgb_*.png"))
        assert got == ["rgb_0000001.png", "rgb_0000002.png"]
    _ok(_run(clean_env, tmp_path, "david-data", "convert", str(mirror), str(store),
             "--workers", "1", "--no-progress"))  # fmt: skip
    out = _ok(_run(clean_env, tmp_path, "david-data", "query", str(store), count, "--format", "csv"))
    assert out.split()[-1] == str(SAMPLES)
    code = (
        "from david_data.store import open_store\n"
        f"store = open_store({str(store)!r})\n"
        "sample = store.sample(int(store.sample_ids[0]))\n"
        "print(len(store.sample_ids), sample['rgb'].shape)\n"
        "try:\n"
        "    store.loader(2)\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = _ok(_run(clean_env, tmp_path, "python", "-c", code)).splitlines()
    assert out[0].split()[0] == str(SAMPLES)
    assert out[1].startswith("MissingExtraError store.loader() needs the [torch] extra")


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["mirror", "{tmp}/m", "--parts", "0", "--prefect"], "prefect"),
        (["fetch", "{tmp}/f", "--ids", "0", "PREFECT_API_URL=http://127.0.0.1:9/api"], "prefect"),
        (["convert", "{tmp}/m", "{tmp}/s", "--dask-address", "tcp://127.0.0.1:1"], "dask"),
        (["query", "az://container/store", "SELECT 1"], "azure"),
        (["predict", "{tmp}/a.jpg", "--depth-model", "{tmp}/m.onnx", "-o", "{tmp}/p"], "infer"),
    ],
    ids=["prefect", "prefect-api-url", "dask", "azure", "infer"],
)
def test_a_missing_extra_is_named_in_one_error_line(
    clean_env: Path, tmp_path: Path, args: list[str], extra: str
):
    env = dict(a.split("=", 1) for a in args if a.startswith("PREFECT_"))
    args = [a.format(tmp=tmp_path) for a in args if not a.startswith("PREFECT_")]
    result = _run(clean_env, tmp_path, "david-data", *args, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert f"needs the [{extra}] extra" in lines[0]
    assert f"pip install 'david-data[{extra}]'" in lines[0]
