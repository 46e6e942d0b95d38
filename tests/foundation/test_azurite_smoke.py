from __future__ import annotations

from david_data import fsutil


def test_atomic_open_on_azurite_leaves_no_partial_object(azurite, az_container):
    fs, base = fsutil.resolve(az_container, azurite.storage_options)
    target = fsutil.join(base, "dir/blob.bin")
    try:
        with fsutil.atomic_open(fs, target) as handle:
            handle.write(b"x" * 1000)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    fs.invalidate_cache()
    assert not fs.exists(target)
    assert fs.find(base) == []
    with fsutil.atomic_open(fs, target) as handle:
        handle.write(b"y" * 1000)
    fs.invalidate_cache()
    assert fs.cat_file(target) == b"y" * 1000
    assert fs.find(base) == [target]
