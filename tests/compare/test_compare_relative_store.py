"""A misspelt run given with a relative store path: the one error line names the store by
its full path ('store store.zarr has no run ...' read as a stutter and hid where it looked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from david_data.cli import main


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "store.zarr", "good", "noisey"],
        ["browse", "store.zarr", "--run", "noisey", "-o", "r"],
    ],
    ids=["compare", "browse"],
)
def test_an_unknown_run_names_the_store_by_its_full_path(
    args: list[str],
    compare_store: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(Path(compare_store).parent)
    code = main(args)
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: store {compare_store} has no run 'noisey' ("), err
    assert "good" in lines[0] and "noisy" in lines[0], err
