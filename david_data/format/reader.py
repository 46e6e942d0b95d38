"""Random access to a store's arrays: a direct shard reader.

zarr-python pays ~1.5 ms of Python overhead per chunk read, more than decoding the chunk
itself. This reader reads each shard's index once (one ranged read, at the start or the
end of the shard object as the array's ``zarr.json`` says, checked against its CRC-32C,
then cached), then fetches a sample's chunk with one ranged read (``os.pread`` locally,
``cat_ranges`` on object stores, concurrent for a batch) and decodes it with the codec
the array declares, checking the chunk's CRC-32C first when the store has them: a
damaged chunk is a :class:`~david_data.errors.StoreError` naming the array, the sample
and the shard object, never wrong values. It reads exactly the bytes zarr-python would,
so both give the same arrays; the arrays it returns are writable (PyTorch's
``default_collate`` wants them so).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ..errors import StoreError, VerificationError
from ..fsutil import is_local
from .codecs import ARRAYS
from .layout import StoreLayout
from .shard import EMPTY, decode_index, index_range

Key = tuple[str, int]
"""``(array name, shard number)``."""


class ShardReader:
    """Reads chunks of a store's arrays straight from its shard objects."""

    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout
        self._local = is_local(layout.fs)
        self._indexes: dict[Key, np.ndarray | None] = {}
        self._lock = threading.Lock()

    def _fetch(self, ranges: list[tuple[str, int, int]]) -> list[bytes | None]:
        """Read ``(path, start, end)`` byte ranges; None for a file that does not exist."""
        if not ranges:
            return []
        if self._local:
            out: list[bytes | None] = []
            for path, start, end in ranges:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    out.append(None)
                    continue
                try:
                    out.append(os.pread(fd, end - start, start))
                finally:
                    os.close(fd)
            return out
        paths, starts, ends = (list(c) for c in zip(*ranges, strict=True))
        blobs = self.layout.fs.cat_ranges(paths, starts, ends, on_error="return")
        results: list[bytes | None] = []
        for path, blob in zip(paths, blobs, strict=True):
            if isinstance(blob, FileNotFoundError):
                results.append(None)
            elif isinstance(blob, BaseException):
                raise StoreError(f"cannot read {path}: {blob}", path=path) from blob
            else:
                results.append(bytes(blob))
        return results

    def _size(self, path: str) -> int | None:
        try:
            return os.path.getsize(path) if self._local else int(self.layout.fs.size(path))
        except FileNotFoundError:
            return None

    def indexes(self, keys: list[Key]) -> dict[Key, np.ndarray | None]:
        """Shard indexes by ``(array, shard)``; None for a shard object that does not exist."""
        missing = sorted({k for k in keys if k not in self._indexes})
        if missing:
            chunks = self.layout.shard_size
            paths = [self.layout.shard_path(name, shard) for name, shard in missing]
            ranges: list[tuple[str, int, int] | None] = []
            for (name, _), path in zip(missing, paths, strict=True):
                fmt = self.layout.shard_index[name]
                size = self._size(path) if fmt.location == "end" else None
                absent = fmt.location == "end" and size is None
                ranges.append(None if absent else (path, *index_range(fmt, chunks, size)))
            fetched = iter(self._fetch([r for r in ranges if r is not None]))
            found: dict[Key, np.ndarray | None] = {}
            for (name, shard), path, r in zip(missing, paths, ranges, strict=True):
                data = None if r is None else next(fetched)
                try:
                    found[(name, shard)] = (
                        None
                        if data is None
                        else decode_index(data, chunks, path, self.layout.shard_index[name])
                    )
                except StoreError as exc:
                    raise StoreError(f"{exc}: {self._fix(shard)}", path=path) from exc
            with self._lock:
                self._indexes.update(found)
        return {k: self._indexes[k] for k in keys}

    def read(
        self, sample_ids: list[int], fields: tuple[str, ...] = ARRAYS
    ) -> list[dict[str, np.ndarray] | None]:
        """Arrays of each sample (None for a sample the store does not hold)."""
        size = self.layout.shard_size
        indexes = self.indexes([(name, sid // size) for sid in sample_ids for name in fields])
        wanted: list[tuple[int, int, str, int, str]] = []
        ranges: list[tuple[str, int, int]] = []
        held = [True] * len(sample_ids)
        for i, sid in enumerate(sample_ids):
            shard = sid // size
            picks = []
            for name in fields:
                index = indexes[(name, shard)]
                if index is None or index[sid % size, 0] == EMPTY:
                    held[i] = False
                    break
                offset, nbytes = (int(v) for v in index[sid % size])
                path = self.layout.shard_path(name, shard)
                picks.append(((i, sid, name, nbytes, path), (path, offset, offset + nbytes)))
            if held[i]:
                wanted += [w for w, _ in picks]
                ranges += [r for _, r in picks]
        blobs = self._fetch(ranges)
        out: list[dict[str, np.ndarray] | None] = [{} if h else None for h in held]
        for (i, sid, name, nbytes, path), blob in zip(wanted, blobs, strict=True):
            arrays = out[i]
            assert arrays is not None
            arrays[name] = self._decode(name, sid, path, blob, nbytes)
        return out

    def _fix(self, shard: int) -> str:
        return _fix(self.layout, shard)

    def _decode(
        self, name: str, sid: int, path: str, blob: bytes | None, nbytes: int
    ) -> np.ndarray:
        shard = sid // self.layout.shard_size
        if blob is None or len(blob) != nbytes:
            got = 0 if blob is None else len(blob)
            raise StoreError(
                f"{path}: the {name} chunk of sample {sid} is cut short ({got} of {nbytes} "
                f"bytes); the store is damaged: {self._fix(shard)}",
                path=path,
                sample_id=sid,
                array=name,
            )
        try:
            array = self.layout.codecs[name].decode(
                blob, self.layout.dtypes[name], self.layout.sample_shape(name)
            )
        except VerificationError as exc:
            raise StoreError(
                f"{path}: the {name} chunk of sample {sid} fails its checksum ({exc}): its "
                f"bytes changed on disk or in transit; the store is damaged: {self._fix(shard)}",
                path=path,
                sample_id=sid,
                array=name,
            ) from exc
        except Exception as exc:
            raise StoreError(
                f"{path}: the {name} chunk of sample {sid} does not decode "
                f"({type(exc).__name__}: {exc}); the store is damaged: {self._fix(shard)}",
                path=path,
                sample_id=sid,
                array=name,
            ) from exc
        return array if array.flags.writeable else array.copy()


def _fix(layout: StoreLayout, shard: int) -> str:
    return (
        f"delete {layout.metadata_path(shard)} and rerun 'david-data convert' "
        f"to rewrite shard {shard}"
    )


def missing_chunks(layout: StoreLayout, sample_id: int) -> str:
    """What to say of a sample its metadata records as converted whose chunks the store
    lacks (a shard object deleted or lost): damage, not a sample to convert (a rerun of
    convert skips its shard as committed)."""
    return (
        f"sample {sample_id} is recorded in {layout.url} as converted, but its chunks are "
        f"missing (a shard object deleted or lost); the store is damaged: "
        f"{_fix(layout, sample_id // layout.shard_size)}"
    )
