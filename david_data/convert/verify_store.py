"""Compare a store with its source, sample by sample: arrays bit-exact, metadata recomputed.

For each chosen sample the source files are decoded afresh and the metadata row is
recomputed; the store must hold the same bits in every array and the same metadata
values (``part_sha256`` is not rehashed: that would reread whole parts). A sample the
source cannot decode must be recorded with ``status = 'error'`` and absent from the arrays.
An empty (zero-byte) object anywhere in the store, or a damaged metadata file, stops
the check before it starts with a :class:`~david_data.errors.StoreError` naming them and
the fix; a shard object cut short or failing its checksum is reported as a difference
of each sample it holds.

Which samples are checked:

- a sparse store (converted from a selection, :mod:`.sparse`): exactly the samples its
  metadata rows hold, each from the part its row names (from an extracted folder: from
  that folder); the source's other samples are not looked at, and a part the rows name
  that SRC lacks is an error before anything is read;
- any other store: every sample of every part of SRC, so a sample the store lacks is a
  difference; from an HTTP base URL (a host lists all 61 parts), every sample of the
  parts the store's rows name.

Either way only the parts holding checked samples are read: from a host, their catalogs
and the members of the checked samples, never the other parts' directories.

It reads the store through :mod:`david_data.format` (layout, metadata, shard reader), as
:mod:`david_data.store` does, and decodes the source with this package's decoder.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, StoreError
from ..format.codecs import ARRAYS
from ..format.consolidated import read_metadata
from ..format.layout import open_layout
from ..format.metadata import STATUS_ERROR, STATUS_OK
from ..format.reader import ShardReader
from ..progress import NullProgress, Progress
from .decode import decode_sample
from .metadata import sample_row
from .source import Source, open_source
from .sparse import selections

_SKIP_COLUMNS = {"part_sha256", "shard", "error"}


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """Differences found; ``ok`` when there are none."""

    store_url: str
    source_url: str
    checked: int
    differences: tuple[tuple[int, str, str], ...] = field(default=())
    """``(sample_id, field or column, what differs)``."""
    selections: tuple[str, ...] = ()
    """The selections a sparse store was converted from (empty: not sparse)."""
    held: int = 0
    """Samples the store holds (its metadata rows)."""

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def sparse(self) -> bool:
        return bool(self.selections)

    def summary(self) -> str:
        head = (
            f"{self.store_url} vs {self.source_url}: {self.checked} samples checked, "
            f"{len(self.differences)} difference(s)"
        )
        lines = [head]
        if self.sparse:
            lines.append(
                f"sparse store: {self.held} samples held (selection {'; '.join(self.selections)})"
            )
        lines += [
            f"  sample {sid}: {what}: {detail}" for sid, what, detail in self.differences[:50]
        ]
        if len(self.differences) > 50:
            lines.append(f"  ... and {len(self.differences) - 50} more")
        return "\n".join(lines)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def verify_store(
    store_url: str,
    source_url: str,
    *,
    sample: int | None = None,
    seed: int = 0,
    storage_options: dict[str, Any] | None = None,
    source_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check ``sample`` random samples (all when None) of those the module docstring
    names against the store."""
    progress = progress or NullProgress()
    if sample is not None and sample < 1:
        raise ConfigError(f"--sample must be at least 1 (got {sample}); leave it out to check all")
    layout = open_layout(store_url, storage_options)
    _refuse_empty_objects(layout)
    reader = ShardReader(layout)
    source = open_source(source_url, source_options)
    rows = {r["sample_id"]: r for r in read_metadata(layout).to_pylist()}
    held = selections(layout)
    everything = _to_check(source, rows, sparse=bool(held), store_url=store_url)
    if sample is not None and sample < len(everything):
        picks = np.random.default_rng(seed).choice(len(everything), size=sample, replace=False)
        everything = sorted(everything[i] for i in picks)
    chosen: dict[str, list[int]] = defaultdict(list)
    for sid, name in everything:
        chosen[name].append(sid)
    differences: list[tuple[int, str, str]] = []
    handle = progress.task("verifying", total=len(everything), unit="samples")
    for name, ids in chosen.items():
        part = source.part(name)
        for sid, files in part.read_samples(ids):
            if not part.member_names(sid):
                differences.append((sid, "source", f"{name} of the source has no sample {sid}"))
            else:
                differences += _check(reader, rows.get(sid), sid, name, files)
            handle.advance()
    handle.finish("ok" if not differences else "differences")
    return VerifyReport(
        store_url=store_url,
        source_url=source_url,
        checked=len(everything),
        differences=tuple(differences),
        selections=held,
        held=len(rows),
    )


def _to_check(
    source: Source, rows: dict[int, dict[str, Any]], *, sparse: bool, store_url: str
) -> list[tuple[int, str]]:
    """``(sample_id, part)`` of every sample to check, ascending (see the module docstring);
    reads the directories of those parts only."""
    if sparse:
        if source.kind == "extracted":  # one folder of loose files stands for every part
            (folder,) = source.parts
            return sorted((sid, folder.name) for sid in rows)
        wanted = sorted((sid, str(row["part"])) for sid, row in rows.items())
        have = {p.name for p in source.parts}
        lacking = sorted({name for _, name in wanted} - have)
        if lacking:
            raise ConfigError(
                f"SRC {source.url} lacks {', '.join(lacking)}, which samples of the sparse "
                f"store {store_url} come from; give the source it was converted from (or one "
                "holding those parts) with --against"
            )
        return wanted
    parts = source.parts
    if source.kind == "http":
        named = {str(row["part"]) for row in rows.values()}
        parts = [p for p in parts if p.name in named]
    return sorted((sid, p.name) for p in parts for sid in p.sample_ids)


def _refuse_empty_objects(layout: Any) -> None:
    """A zero-byte object is never a valid shard or metadata file: name them all at once."""
    empty: list[str] = []
    for name in ARRAYS:
        folder = f"{layout.root.rstrip('/')}/{name}/c"
        try:
            found = layout.fs.find(folder, detail=True)
        except FileNotFoundError:
            continue
        empty += sorted(path for path, info in found.items() if info.get("size") == 0)
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise StoreError(
            f"store {layout.root} holds {len(empty)} empty shard object(s): {shown}; delete "
            "them and the metadata files of their shards (metadata/shard-NNNNNN.parquet), then "
            "rerun 'david-data convert' to rewrite them"
        )


def _check(
    reader: ShardReader, row: dict[str, Any] | None, sid: int, part: str, files: Any
) -> list:
    if row is None:
        return [(sid, "metadata", "no row in the store (shard not converted?)")]
    try:
        (arrays,) = reader.read([sid])
    except StoreError as exc:
        return [(sid, "arrays", str(exc))]
    try:  # decoded as the store holds it (float16 EXRs of a float32 store widened exactly)
        sample = decode_sample(
            sid,
            files,
            depth_dtype=reader.layout.dtypes["depth"],
            normal_dtype=reader.layout.dtypes["normal"],
        )
    except Exception as exc:  # noqa: BLE001 - any decode failure is this sample's (as in convert)
        found = []
        if row["status"] != STATUS_ERROR:
            found.append(
                (
                    sid,
                    "status",
                    f"source is unreadable ({exc}) but the store says {row['status']!r}",
                )
            )
        if arrays is not None:
            found.append((sid, "arrays", "an unreadable sample has arrays in the store"))
        return found
    if row["status"] != STATUS_OK or arrays is None:
        return [
            (
                sid,
                "status",
                f"source decodes but the store has status {row['status']!r}: {row['error']}",
            )
        ]
    found = []
    for name in ARRAYS:
        want, got = sample.arrays()[name], arrays[name]
        if want.dtype != got.dtype or want.shape != got.shape:
            found.append(
                (sid, name, f"{got.dtype}{got.shape} in store, {want.dtype}{want.shape} in source")
            )
        elif want.tobytes() != got.tobytes():
            diff = int(np.count_nonzero(want.view(np.uint8) != got.view(np.uint8)))
            found.append((sid, name, f"{diff} bytes differ"))
    expected = sample_row(sample, part=part, part_sha256=None, shard=row["shard"])
    for column, value in expected.items():
        if column not in _SKIP_COLUMNS and not _same(value, row[column]):
            found.append((sid, column, f"store has {row[column]!r}, source gives {value!r}"))
    return found
