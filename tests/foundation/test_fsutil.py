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
