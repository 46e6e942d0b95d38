"""The static site of a browse report: opens from disk, needs no server and no network.

::

    REPORT/index.html     the page (written last: the report's commit marker)
    REPORT/data.js        window.BROWSE_DATA = {...}: columns, runs, rows (file:// pages
                          cannot fetch JSON, but they can load a script)
    REPORT/browse.js      the table (paged, sorted by a click on a header, filtered) and
                          the detail view of a sample (``index.html#sample=ID``)
    REPORT/browse.css
    REPORT/img/...        the pictures (:mod:`.images`), loaded lazily

The page places every string with ``textContent`` or ``setAttribute`` (never as HTML);
the few strings this module writes into ``index.html`` are escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from .. import __version__
from ..fsutil import atomic_open, resolve
from .images import ERROR_SCALES, GROUND_TRUTH, run_key
from .plan import BrowsePlan

ASSETS = ("browse.js", "browse.css")
PAGE_SIZE = 100
"""Rows a page of the table shows at first (the page offers other sizes)."""
_ROWS_PER_WRITE = 1000


def write_site(plan: BrowsePlan, output: Path, drawn: Iterable[int]) -> Path:
    """Write the page of ``plan`` into ``output``; samples in ``drawn`` have pictures.
    Returns the path of ``index.html``."""
    output.mkdir(parents=True, exist_ok=True)
    fs, _ = resolve(str(output))
    for name in ASSETS:
        data = resources.files(__package__).joinpath("assets", name).read_bytes()
        with atomic_open(fs, str(output / name)) as handle:
            handle.write(data)
    with atomic_open(fs, str(output / "data.js")) as handle:
        for piece in _data_js(plan, set(drawn)):
            handle.write(piece.encode())
    index = output / "index.html"
    with atomic_open(fs, str(index)) as handle:
        handle.write(_index_html(plan).encode())
    return index


def _data_js(plan: BrowsePlan, drawn: set[int]) -> Iterable[str]:
    """``data.js`` in pieces (memory stays flat in the number of rows)."""
    head = {
        "title": plan.settings.store_url,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "pageSize": PAGE_SIZE,
        "groundTruth": list(GROUND_TRUTH),
        "errorScales": ERROR_SCALES,
        "runs": [
            {
                "name": r.name,
                "model": r.model,
                "sha256": r.model_sha256,
                "key": run_key(r.name, r.model_sha256),
                "fields": list(r.fields),
            }
            for r in plan.runs
        ],
        "columns": [
            {"key": c.key, "kind": c.kind, "run": c.run, "metric": c.metric, "better": c.better}
            for c in plan.columns
        ],
        "sort": {"column": plan.sort_column, "descending": plan.sort_descending},
    }
    text = _json(head)
    yield "window.BROWSE_DATA = " + text[:-1] + ',\n"rows": [\n'
    names = [c.key for c in plan.columns]
    batches = plan.table.select(names).to_batches(max_chunksize=_ROWS_PER_WRITE)
    ids = iter(plan.table.column("sample_id").to_pylist())
    covered = iter(plan.covered)
    first = True
    for batch in batches:
        lines = []
        for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
            sid = next(ids)
            held = next(covered)
            # The row's last value: bit 0 the ground-truth pictures, bit 1 + i run i's.
            flags = 0
            if sid in drawn:
                flags = 1 | sum(1 << (i + 1) for i, h in enumerate(held) if h)
            lines.append(_json([*map(_value, row), flags]))
        if lines:
            yield ("" if first else ",\n") + ",\n".join(lines)
            first = False
    yield "\n]};\n"


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else float(f"{v:.6g}")
    return v


def _json(value: Any) -> str:
    # ASCII only, and "<" escaped: the text stays inert wherever it is pasted.
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":")).replace(
        "<", "\\u003c"
    )


def _index_html(plan: BrowsePlan) -> str:
    title = html.escape(f"david-data browse: {plan.settings.store_url}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="browse.css">
</head>
<body>
<header>
  <h1 id="title">{title}</h1>
  <p id="about"></p>
</header>
<main>
  <section id="list">
    <div class="controls">
      <input id="filter" type="search" size="40" placeholder="filter: text, or column&gt;value, column=value" aria-label="filter rows">
      <span id="count"></span>
      <span class="pager">
        <button id="prev" type="button">&larr; previous</button>
        <span id="page"></span>
        <button id="next" type="button">next &rarr;</button>
        <label>rows a page <select id="page-size"></select></label>
      </span>
    </div>
    <div class="scroll"><table id="samples"><thead></thead><tbody></tbody></table></div>
  </section>
  <section id="detail" hidden></section>
</main>
<noscript>This page needs JavaScript (it runs from disk: no server, no network).</noscript>
<script src="data.js"></script>
<script src="browse.js"></script>
</body>
</html>
"""
