"""Raw-file outputs (mirror, fetch, synth) never write into a Zarr store: the guide's
"point an output at a folder that is not ours"."""

from __future__ import annotations

from pathlib import Path

import pytest

from david_data.cli import main


@pytest.mark.parametrize(
    "command",
    [
        ["mirror", "{dest}", "--parts", "0", "--base-url", "http://127.0.0.1:9/"],
        ["fetch", "{dest}", "--ids", "0-1", "--base-url", "http://127.0.0.1:9/"],
        ["synth", "{dest}", "--parts", "0", "--samples-per-part", "1"],
    ],
    ids=lambda c: c[0],
)
def test_a_zarr_store_as_dest_is_refused_and_left_untouched(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    before = sorted(p.name for p in store.iterdir())
    code = main([c.format(dest=store) for c in command] + ["--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "is a Zarr store" in lines[0] and str(store) in lines[0], err
    assert sorted(p.name for p in store.iterdir()) == before
