"""The examples of --help of infer, evaluate, query, compare and browse that use ./store
and a model file work when pasted, in that order, in a folder with ./store and m.onnx
(the ones naming a released model, a cluster or a remote store are left out)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from david_data.cli import main
from david_data.convert.run import convert
from david_data.infer.testmodels import build_tiny_model
from david_data.synth import write_part

COMMANDS = ("infer", "evaluate", "query", "compare", "browse")


def _examples(command: str, capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    lines = text.split("examples:", 1)[1].strip().splitlines()
    pasted = []
    for line in lines:
        if "./store" not in line or "--model " in line or "tcp://" in line:
            continue
        args = shlex.split(line, comments=True)
        assert args[0] == "david-data", line
        pasted.append(args[1:])
    return pasted


def test_the_help_examples_work_when_pasted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for part, first in (("0000", 0), ("0025", 125000), ("0050", 250000)):
        write_part(tmp_path / "src" / f"SynthHuman_{part}.zip", [first, first + 1])
    assert convert(str(tmp_path / "src"), str(tmp_path / "store"), shard_size=2, workers=1).ok
    build_tiny_model(tmp_path / "m.onnx", "depth", seed=0)
    build_tiny_model(tmp_path / "large.onnx", "depth", seed=1)
    monkeypatch.chdir(tmp_path)
    # the second run the compare examples name
    assert main(["infer", "--from-store", "./store", "--model-path", "large.onnx",
                 "--run", "large", "--no-progress"]) == 0  # fmt: skip
    assert main(["evaluate", "./store", "--run", "large", "-o", "eval-large", "--no-progress"]) == 0
    capsys.readouterr()
    tried = 0
    for command in COMMANDS:
        for args in _examples(command, capsys):
            if command in ("infer", "evaluate", "browse"):
                args.append("--no-progress")
            code = main(args)
            out, err = capsys.readouterr()
            assert code == 0, (args, out, err)
            tried += 1
    assert tried >= 9
