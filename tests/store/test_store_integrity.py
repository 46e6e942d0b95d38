"""Issue 15 item 4, "integrity on every read": every chunk (and shard index) of a new store
ends with Zarr v3's ``crc32c``, so a bit flipped at rest is a ``StoreError`` naming the
array and the sample wherever the store is read (``store.sample``, the loader,
``verify-store``, ``infer --from-store``), zarr-python and tensorstore reject it too, and
stores written before (no checksums) still read.

Each damage is a flip the chunk's codec decodes without noticing (wrong values, no error):
what these readers returned before the checksum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import google_crc32c
import pytest
from store_helpers import ALL_IDS, SHARD, as_format_1, chunk_span, flip_silent_byte

from david_data.cli import main
from david_data.convert.run import convert
from david_data.errors import StoreError
from david_data.format.codecs import ARRAYS, Checksummed
from david_data.format.consolidated import _read_consolidated
from david_data.format.layout import FORMAT_VERSION, open_layout
from david_data.store import open_store

DAMAGED = 98041  # a full-body sample of the float32 part, inside shard 24510 (98040..98043)


def damage_message(name: str, sid: int = DAMAGED) -> str:
    return rf"{name}/c/\d+/[0/]+: the {name} chunk of sample {sid} fails its checksum"


@pytest.fixture(scope="module")
def format1_store(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's store as format 1 wrote it: no chunk checksums, consolidated
    metadata in ``metadata/_consolidated.parquet``."""
    path = tmp_path_factory.mktemp("format1") / "store.zarr"
    shutil.copytree(store, path)
    as_format_1(path)
    return path


def test_new_stores_checksum_every_chunk_and_shard_index(store: Path) -> None:
    layout = open_layout(str(store))
    assert layout.attributes["format_version"] == FORMAT_VERSION == 2
    for name in ARRAYS:
        (sharding,) = json.loads((store / name / "zarr.json").read_text())["codecs"]
        assert sharding["configuration"]["codecs"][-1] == {"name": "crc32c"}, name
        assert sharding["configuration"]["index_codecs"][-1] == {"name": "crc32c"}, name
        assert isinstance(layout.codecs[name], Checksummed)
        path, offset, nbytes = chunk_span(store, name, DAMAGED)
        chunk = path.read_bytes()[offset : offset + nbytes]
        assert chunk[-4:] == google_crc32c.value(chunk[:-4]).to_bytes(4, "little"), name


@pytest.mark.parametrize("name", ARRAYS)
def test_a_damaged_chunk_is_a_store_error_naming_the_array_and_the_sample(
    store: Path, store_copy: Path, name: str
) -> None:
    flip_silent_byte(store_copy, name, DAMAGED)
    damaged = open_store(str(store_copy))
    with pytest.raises(StoreError, match=damage_message(name)) as info:
        damaged.sample(DAMAGED)
    assert (info.value.array, info.value.sample_id) == (name, DAMAGED)  # type: ignore[attr-defined]
    assert "rerun 'david-data convert' to rewrite shard 24510" in str(info.value)
    with pytest.raises(StoreError, match=damage_message(name)):
        damaged.read_batch([0, DAMAGED], fields=(name,))
    # the rest of the shard reads as before
    clean = open_store(str(store))
    for sid in (98040, 98042):
        assert damaged.sample(sid)[name].tobytes() == clean.sample(sid)[name].tobytes()


def test_the_loader_raises_the_damage_by_name_in_workers_too(store_copy: Path) -> None:
    torch = pytest.importorskip("torch", reason="the loader needs PyTorch")
    flip_silent_byte(store_copy, "normal", DAMAGED)
    damaged = open_store(str(store_copy))
    for workers in (0, 1):  # in this process, then re-raised from a spawned worker
        loader = damaged.loader(4, shuffle=False, num_workers=workers, fields=["normal"])
        with pytest.raises(StoreError, match=damage_message("normal")):
            list(loader)
    # the map-style dataset in torch's own DataLoader (workers re-raise the same way)
    plain = torch.utils.data.DataLoader(damaged.subset([98040, DAMAGED]))
    with pytest.raises(StoreError, match=damage_message("normal")):
        list(plain)


def test_verify_store_names_the_damaged_chunk_and_exits_1(
    store_copy: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_silent_byte(store_copy, "intrinsics", DAMAGED)
    assert main(["verify-store", str(store_copy), "--against", str(mirror)]) == 1
    out = capsys.readouterr().out
    assert f"{len(ALL_IDS)} samples checked, 1 difference(s)" in out
    (line,) = [x for x in out.splitlines() if x.startswith(f"  sample {DAMAGED}: arrays: ")]
    assert "the intrinsics chunk of sample 98041 fails its checksum" in line


def test_infer_from_store_records_the_damaged_sample_as_failed(
    store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from david_data.infer.testmodels import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny.onnx", "depth")
    flip_silent_byte(store_copy, "rgb", DAMAGED)
    out = tmp_path / "pred"
    argv = ["infer", "--from-store", str(store_copy), str(out), "--model-path", str(model)]
    query = ["--query", f"sample_id IN (98040, {DAMAGED})", "--no-progress"]
    assert main([*argv, "--task", "depth", *query]) == 1
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    assert "the rgb chunk of sample 98041 fails its checksum" in printed.out + printed.err
    assert (out / "rgb_0098040.depth.exr").is_file()
    assert not (out / "rgb_0098041.depth.exr").exists()


def test_zarr_python_and_tensorstore_reject_a_damaged_chunk(store: Path, store_copy: Path) -> None:
    import tensorstore as ts
    import zarr

    want = open_store(str(store)).read_batch([98040, DAMAGED])
    for name in ARRAYS:
        flip_silent_byte(store_copy, name, DAMAGED)
    group = zarr.open_group(str(store_copy), mode="r")
    for name in ARRAYS:
        array = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(store_copy / name)}},
            read=True,
        ).result()
        with pytest.raises(ValueError, match="checksum do not match"):
            group[name][DAMAGED]
        with pytest.raises(ValueError, match="DATA_LOSS"):
            array[DAMAGED].read().result()
        # both still read the sample beside it, bit-exact
        assert group[name][98040].tobytes() == want[name][0].tobytes(), name
        assert array[98040].read().result().tobytes() == want[name][0].tobytes(), name


def test_format_1_stores_still_read_and_keep_their_format(
    store: Path, format1_store: Path, mirror: Path, tmp_path: Path
) -> None:
    old = open_store(str(format1_store))
    assert not any(isinstance(c, Checksummed) for c in old.layout.codecs.values())
    assert _read_consolidated(old.layout) is not None  # its metadata/_consolidated.parquet
    new = open_store(str(store))
    got, want = old.read_batch(ALL_IDS), new.read_batch(ALL_IDS)
    for name in ARRAYS:
        assert got[name].tobytes() == want[name].tobytes(), name
    assert old.metadata.equals(new.metadata)
    import zarr

    group = zarr.open_group(str(format1_store), mode="r")
    assert group["depth"][DAMAGED].tobytes() == want["depth"][ALL_IDS.index(DAMAGED)].tobytes()

    # Converting into it again (nothing left to do, or new shards) keeps its format.
    again = tmp_path / "store.zarr"
    shutil.copytree(format1_store, again)
    shutil.rmtree(again / "rgb" / "c" / str(DAMAGED // SHARD))
    (again / "metadata" / f"shard-{DAMAGED // SHARD:06d}.parquet").unlink()
    report = convert(str(mirror), str(again), shard_size=SHARD, workers=1)
    assert report.ok and report.shards_written == 1, report.summary()
    layout = open_layout(str(again))
    assert layout.attributes["format_version"] == 1
    assert not any(isinstance(c, Checksummed) for c in layout.codecs.values())
    rewritten = open_store(str(again)).read_batch(ALL_IDS)
    assert all(rewritten[n].tobytes() == want[n].tobytes() for n in ARRAYS)
    # its consolidated file moved out of metadata/, where globs counted its rows twice
    assert (again / "metadata.parquet").is_file()
    assert not (again / "metadata" / "_consolidated.parquet").exists()



def test_a_lost_shard_object_is_damage_not_a_sample_to_convert(
    store_copy: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shard object deleted or lost under committed metadata: reading its samples says
    the store is damaged and which metadata file to delete (before: 'sample N is not in
    STORE; convert the part holding it', which a rerun of convert skips as committed), and
    verify-store names the missing arrays (before: 'source decodes but the store has
    status 'ok': None')."""
    sid = ALL_IDS[0]
    layout = open_layout(str(store_copy))
    shard = sid // layout.shard_size
    Path(layout.shard_path("rgb", shard)).unlink()
    fix = rf"delete {layout.metadata_path(shard)} and rerun 'david-data convert'"
    with pytest.raises(StoreError, match=rf"sample {sid} .*chunks are missing.*{fix}"):
        open_store(str(store_copy)).sample(sid)
    assert main(["verify-store", str(store_copy), "--against", str(mirror)]) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith(f"  sample {sid}: ")]
    assert line.startswith(f"  sample {sid}: arrays: ") and "chunks are missing" in line
