"""What every user meets first: help, version, examples, one-line usage errors, and a
clean exit after object-store work."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from ops_helpers import CLI, env_without_prefect_api

from david_data import __version__
from david_data.cli import EXAMPLES, build_parser, main


def _commands(parser=None, prefix=""):  # noqa: ANN001, ANN202
    import argparse

    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _commands(sub, f"{prefix}{name} ")


def test_bare_command_prints_help_not_an_error():
    result = subprocess.run([CLI], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage: david-data" in result.stdout and "COMMAND" in result.stdout
    assert "mirror" in result.stdout and "convert" in result.stdout
    assert "error" not in result.stderr.lower() and "Traceback" not in result.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"david-data {__version__}"


def test_every_command_help_has_examples(capsys):
    commands = dict(_commands())
    assert {"mirror", "convert", "pipeline", "demo", "models fetch"} <= set(commands)
    for name, parser in commands.items():
        text = parser.format_help()
        assert re.search(r"examples?:\n\s+david-data ", text), f"'david-data {name} --help' has no examples"
    assert set(EXAMPLES) <= set(commands), "examples for a command that does not exist"


def test_examples_use_real_options():
    commands = dict(_commands())
    for name, lines in EXAMPLES.items():
        parser = commands[name]
        known = {s for a in parser._actions for s in a.option_strings}
        for line in lines:
            for word in line.split("#")[0].split():
                if word.startswith("--"):
                    assert word in known, f"example of {name!r} uses unknown {word}: {line}"


@pytest.mark.parametrize(
    "argv",
    [["mirror", "d", "--jobs", "x"], ["nosuchcommand"], ["pipeline", "only-one"], ["models"]],
)
def test_usage_errors_are_one_line(argv):
    result = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "--help" in lines[0]


@pytest.mark.azurite
def test_no_loop_traceback_at_exit_after_zarr_on_azure(azurite, az_container):
    """zarr's own event loop is closed at exit before adlfs closes its clients on it;
    the CLI closes them first (else: 'RuntimeError: Loop is not running' at exit)."""
    code = (
        "import sys, numpy as np, zarr\n"
        "from david_data.cli import main\n"
        f"group = zarr.open_group({az_container + '/g'!r}, mode='w',"
        f" storage_options={azurite.storage_options!r})\n"
        "group.create_array('a', shape=(4,), dtype='u1')[:] = np.arange(4, dtype='u1')\n"
        "sys.exit(main(['--verbose', 'models', 'list']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=azurite.env
    )
    assert result.returncode == 0, result.stderr
    assert "Loop is not running" not in result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo", "--samples-per-part", "-1"], "--samples-per-part must be 1"),
        (["demo", "--parts", "x"], "cannot read part selection"),
        (["demo", "--workdir", "FILE"], "is a file"),
    ],
)
def test_demo_checks_its_options_first(tmp_path, argv, expected):
    afile = tmp_path / "afile"
    afile.write_text("")
    argv = [str(afile) if a == "FILE" else a for a in argv]
    if "--workdir" not in argv:
        argv += ["--workdir", str(tmp_path / "work")]
    result = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert result.stdout == "" and not (tmp_path / "work").exists()


def test_a_prefect_api_that_is_gone_is_one_error_naming_the_variable(tmp_path):
    """Issue 15 item 9: PREFECT_API_URL pointing at a server that is gone: one line naming
    the variable and the fix, exit 2, before any flow run (no Prefect traceback)."""
    import socket

    from david_data.synth import write_part

    source = tmp_path / "mirror"
    write_part(source / "SynthHuman_0000.zip", [0, 1])
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
        env = {**env_without_prefect_api(tmp_path / "prefect-home"), "PREFECT_API_URL": url}
        result = subprocess.run(
            [CLI, "convert", str(source), str(tmp_path / "store"), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"PREFECT_API_URL={url}" in errors[0] and "does not answer" in errors[0]
    assert "unset PREFECT_API_URL" in errors[0]
    assert not (tmp_path / "store" / "metadata").exists()
