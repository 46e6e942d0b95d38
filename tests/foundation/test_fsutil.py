"""One contract for atomic writes, run on the local disk, memory:// and Azurite."""

from __future__ import annotations

import pytest

from david_data import fsutil


@pytest.fixture(params=["local", "memory", "azurite"])
def base_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    if request.param == "memory":
        return f"memory://fsutil-{id(request)}"
    azurite = request.getfixturevalue("azurite")
    request.node.storage_options = azurite.storage_options
    return azurite.new_container()


def _fs(request, url):
    return fsutil.resolve(url, getattr(request.node, "storage_options", None))


def test_atomic_write_bytes_round_trips(request, base_url):
    fs, base = _fs(request, base_url)
    target = fsutil.join(base, "a/b.bin")
    fsutil.atomic_write_bytes(fs, target, b"hello")
    fsutil.atomic_write_bytes(fs, target, b"hello again")
    fs.invalidate_cache()
    assert fs.cat_file(target) == b"hello again"
    assert [p for p in fs.find(base) if not p.endswith(target.rsplit("/", 1)[-1])] == []


def test_failed_atomic_open_leaves_nothing(request, base_url):
    fs, base = _fs(request, base_url)
    target = fsutil.join(base, "x/part.bin")
    with pytest.raises(RuntimeError), fsutil.atomic_open(fs, target) as handle:
        handle.write(b"partial" * 1000)
        raise RuntimeError("killed midway")
    fs.invalidate_cache()
    assert not fs.exists(target)
    assert fs.find(base) == []
    with fsutil.atomic_open(fs, target) as handle:
        handle.write(b"complete")
    fs.invalidate_cache()
    assert fs.cat_file(target) == b"complete"


def test_storage_options_parse():
    assert fsutil.parse_storage_options(["account_name=x", "sas_token=a=b"]) == {"account_name": "x", "sas_token": "a=b"}
    with pytest.raises(ValueError):
        fsutil.parse_storage_options(["novalue"])


def test_local_files_answer_as_fsspec_local_does(tmp_path):
    # open_folder's LocalFiles stands in for fsspec's LocalFileSystem on a local DEST:
    # every call a job makes must answer the same, errors included.
    from fsspec.implementations.local import LocalFileSystem

    ours, path = fsutil.open_folder(str(tmp_path / "root"))
    theirs = LocalFileSystem()
    assert isinstance(ours, fsutil.LocalFiles) and fsutil.is_local(ours)
    assert path == str(tmp_path / "root")
    assert fsutil.open_folder(f"file://{tmp_path}/root")[1] == path
    assert not isinstance(fsutil.open_folder("memory://x/y")[0], fsutil.LocalFiles)
    for fs in (ours, theirs):
        with pytest.raises(FileNotFoundError):
            fs.ls(path, detail=True)
        with pytest.raises(FileNotFoundError):
            fs.cat_file(f"{path}/a.bin")
    ours.makedirs(f"{path}/sub", exist_ok=True)
    ours.makedirs(f"{path}/sub", exist_ok=True)
    fsutil.atomic_write_bytes(ours, f"{path}/a.bin", b"abc")
    ours.pipe_file(f"{path}/b.bin", b"hello")

    def listed(fs):
        entries = fs.ls(path, detail=True)
        return sorted((e["name"], e["size"], e["type"]) for e in entries)

    assert listed(ours) == listed(theirs)
    assert sorted(ours.ls(path, detail=False)) == sorted(theirs.ls(path, detail=False))
    assert ours.cat_file(f"{path}/b.bin") == theirs.cat_file(f"{path}/b.bin") == b"hello"
    assert [ours.isfile(p) for p in (f"{path}/a.bin", f"{path}/sub", f"{path}/no")] == [
        theirs.isfile(p) for p in (f"{path}/a.bin", f"{path}/sub", f"{path}/no")
    ]
    assert listed(ours) == sorted(
        (e["name"], e["size"], e["type"]) for e in ours.ls(path, detail=True, refresh=True)
    )
    names = (f"{path}/a.bin", f"{path}/sub", f"{path}/no")
    assert [ours.exists(p) for p in names] == [theirs.exists(p) for p in names] == [1, 1, 0]
    assert ours.size(f"{path}/b.bin") == theirs.size(f"{path}/b.bin") == 5
    for fs in (ours, theirs):
        with pytest.raises(FileNotFoundError):
            fs.size(f"{path}/no")
        with pytest.raises(FileNotFoundError):
            fs.open(f"{path}/no", "rb")
        with fs.open(f"{path}/b.bin", "rb", block_size=8 << 20) as handle:
            assert handle.seek(0, 2) == 5 and handle.seek(1) == 1 and handle.read(3) == b"ell"
    assert fsutil.to_url(ours, path) == path
    ours.rm_file(f"{path}/a.bin")
    assert sorted(ours.ls(path, detail=False)) == [f"{path}/b.bin", f"{path}/sub"]
