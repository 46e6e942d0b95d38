"""The README's training example, pasted into a script as it stands, run in a subprocess
(issue 15, item 7): it runs and resumes; without its ``__main__`` guard it stops at once
with one error saying what to write."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the loader needs PyTorch: pip install 'david-data[torch]'")

from david_data.convert import convert  # noqa: E402
from david_data.synth import write_part  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"
FULL_BODY = range(98_040, 98_052)  # the README's example selects full-body samples
GUARD = 'if __name__ == "__main__":'


def training_example() -> str:
    """The first Python block of the README's Training section, verbatim."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Training") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Training section has no Python example"
    return match.group(1)


@pytest.fixture(scope="module")
def full_body_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mirror = tmp_path_factory.mktemp("readme-mirror")
    write_part(mirror / "SynthHuman_0019.zip", FULL_BODY)
    path = tmp_path_factory.mktemp("readme-store") / "store.zarr"
    report = convert(str(mirror), str(path), shard_size=10, workers=1)
    assert report.ok, report.summary()
    return path


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_training_example_runs_and_resumes_as_pasted(full_body_store, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(training_example(), encoding="utf-8")
    first = run(script, str(full_body_store), "--epochs", "1", "--workers", "1")
    assert first.returncode == 0, first.stderr
    state = json.loads((tmp_path / "loader-state.json").read_text())
    assert (state["epoch"], state["segments"]) == (1, [])  # saved after epoch 0's last batch
    second = run(script, str(full_body_store), "--epochs", "2", "--workers", "1")
    assert second.returncode == 0, second.stderr
    state = json.loads((tmp_path / "loader-state.json").read_text())
    assert (state["epoch"], state["segments"]) == (2, [])


def test_the_example_without_its_main_guard_says_what_to_write(full_body_store, tmp_path):
    lines = training_example().splitlines()
    guard = next(i for i, line in enumerate(lines) if line.startswith(GUARD))
    body = textwrap.dedent("\n".join(lines[guard + 1 :]))  # the guarded code, at top level
    script = tmp_path / "train.py"
    script.write_text("\n".join(lines[:guard]) + "\n" + body + "\n", encoding="utf-8")
    out = run(script, str(full_body_store), "--epochs", "1", "--workers", "1")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("david_data.errors.ConfigError: ")
    assert "spawn" in last and GUARD in last
    assert "bootstrapping" not in out.stderr and "exited unexpectedly" not in out.stderr
    assert not (tmp_path / "loader-state.json").exists()  # no worker was started


WORKER_REENTERS = """
import sys
from david_data import open_store
if len(sys.argv) > 1:  # an if the parent cannot judge: the workers see the same argv
    loader = open_store(sys.argv[1]).loader(4, num_workers=1, fields=["intrinsics"], start_method="spawn")
    for batch in loader:  # spawn imports this script again in each worker
        pass
"""


def test_a_worker_that_imports_the_loop_again_raises_the_same_advice(full_body_store, tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(WORKER_REENTERS, encoding="utf-8")
    out = run(script, str(full_body_store))
    assert out.returncode == 1
    assert "david_data.errors.ConfigError: " in out.stderr and GUARD in out.stderr
    assert "bootstrapping" not in out.stderr  # said by david_data, before any process starts
