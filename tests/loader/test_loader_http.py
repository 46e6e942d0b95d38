"""The loader over a store served by a web server (issue 15, item 5): it opens through the
consolidated metadata, and its shard cache answers with what the server holds now."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the loader needs PyTorch: pip install 'david-data[torch]'")

from loader_helpers import OK_IDS  # noqa: E402

from david_data import open_store  # noqa: E402
from david_data.synth.host import LocalHost  # noqa: E402


def intrinsics_by_id(url: str, cache_dir: Path) -> dict[int, np.ndarray]:
    """One epoch of a fresh loader (a new job), as {sample id: intrinsics}."""
    loader = open_store(url).loader(4, shuffle=False, fields=["intrinsics"], cache_dir=cache_dir)
    out = {}
    for batch in loader:
        for sid, matrix, pad in zip(
            batch["sample_id"].tolist(),
            batch["intrinsics"].numpy(),
            batch["padding"].tolist(),
            strict=True,
        ):
            if not pad:
                out[sid] = matrix
    return out


def test_a_rewritten_shard_is_read_anew_not_from_the_cache(store_path: Path, tmp_path: Path):
    served = tmp_path / "served"
    shutil.copytree(store_path, served / "store.zarr")
    cache_dir = tmp_path / "cache"
    with LocalHost(served) as host:
        url = host.url("store.zarr")
        layout = open_store(url).layout
        first = intrinsics_by_id(url, cache_dir)
        assert sorted(first) == OK_IDS
        local = open_store(str(store_path)).read_batch(OK_IDS, fields=["intrinsics"])
        assert np.array_equal(np.stack([first[i] for i in OK_IDS]), local["intrinsics"])
        # a re-conversion rewrites shard 0 (here: with shard 2's values, all of them ok)
        shard0, shard2 = (
            layout.shard_path("intrinsics", k).split("/store.zarr/")[1] for k in (0, 2)
        )
        host.replace(f"store.zarr/{shard0}", (served / "store.zarr" / shard2).read_bytes())
        second = intrinsics_by_id(url, cache_dir)
        now = open_store(url).read_batch(OK_IDS, fields=["intrinsics"])  # straight from the server
        assert np.array_equal(np.stack([second[i] for i in OK_IDS]), now["intrinsics"])
        assert not np.array_equal(second[0], first[0])  # the new values, not the cached ones
        assert np.array_equal(second[0], first[20])
