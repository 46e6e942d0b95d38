"""A table of 10,000 samples loads as one page of rows (the rest are paged), sorts and
pages in a real browser; thumbnails only for the few samples that have them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from browser_helpers import Browser

from david_data.browse import BrowsePlan, BrowseSettings, write_site
from david_data.browse.images import image_name
from david_data.browse.plan import Column
from david_data.browse.site import PAGE_SIZE

ROWS = 10_000
STORE_URL = "file:///nowhere/<b>store</b>&amp;"
"""HTML in the store's address: the page shows it as text."""


def synthetic_plan(out: Path) -> BrowsePlan:
    rng = np.random.default_rng(7)
    ids = np.arange(ROWS, dtype=np.int64) * 29
    absrel = rng.random(ROWS)
    absrel[rng.choice(ROWS, 50, replace=False)] = np.nan  # not measured: sorted last
    table = pa.table(
        {
            "sample_id": ids,
            "scenario": np.where(ids < 98040, "face", "full_body"),
            "foreground_fraction": rng.random(ROWS),
            "m:depth_absrel": pa.array(absrel, from_pandas=True),
        }
    )
    columns = (
        Column(key="sample_id", kind="int"),
        Column(key="scenario", kind="str"),
        Column(key="foreground_fraction", kind="float"),
        Column(key="m:depth_absrel", kind="float", run="m", metric="depth_absrel", better="lower"),
    )
    return BrowsePlan(
        settings=BrowseSettings(store_url=STORE_URL, output=str(out)),
        runs=(),
        columns=columns,
        table=table,
        covered=tuple(() for _ in range(ROWS)),
        sort_column="m:depth_absrel",
        sort_descending=True,
        units=(),
    )


def test_ten_thousand_rows_load_as_one_page_and_sort(tmp_path: Path, browser: Browser) -> None:
    out = tmp_path / "report"
    plan = synthetic_plan(out)
    few = [int(s) for s in plan.table.column("sample_id").to_pylist()[:3]]
    index = write_site(plan, out, drawn=few)
    assert (out / "data.js").stat().st_size < 2_000_000

    started = time.monotonic()
    browser.open(index.as_uri())
    browser.wait_rendered(0)
    loaded_s = time.monotonic() - started
    print(f"10,000-row page rendered {loaded_s:.2f} s after navigation started")

    assert browser.js("document.querySelectorAll('#samples tbody tr').length") == PAGE_SIZE
    assert STORE_URL in browser.js("document.getElementById('title').textContent")
    assert STORE_URL in browser.js("document.title")
    assert browser.js("document.querySelectorAll('header b').length") == 0
    assert browser.js("document.getElementById('count').textContent") == f"{ROWS} samples"
    assert "page 1 of 100" in browser.js("document.getElementById('page').textContent")
    # worst first: the largest AbsRel, missing values last
    absrel = np.asarray(plan.table.column("m:depth_absrel").to_numpy(zero_copy_only=False))
    ids = plan.table.column("sample_id").to_numpy()
    first = browser.js("document.querySelector('#samples tbody tr').dataset.sample")
    assert int(first) == int(ids[np.nanargmax(absrel)])
    # the three samples with pictures are not on this page: no image at all is asked for
    assert browser.js("document.querySelectorAll('img.thumb').length") == 0

    before = browser.rendered()
    browser.js("document.querySelector('th[data-column=\"sample_id\"]').click()")
    browser.wait_rendered(before)
    rows = browser.js(
        "Array.from(document.querySelectorAll('#samples tbody tr')).map(r => Number(r.dataset.sample))"
    )
    assert rows == [int(s) for s in ids[:PAGE_SIZE]]
    # the first rows now hold pictures: 4 ground-truth thumbnails each (files absent: no runs drawn)
    assert browser.js("document.querySelectorAll('img.thumb').length") == 4 * len(few)
    assert browser.js("document.querySelector('img.thumb').getAttribute('src')") == image_name(
        few[0], "rgb", "t"
    )

    before = browser.rendered()
    browser.js("document.getElementById('next').click()")
    browser.wait_rendered(before)
    rows = browser.js(
        "Array.from(document.querySelectorAll('#samples tbody tr')).map(r => Number(r.dataset.sample))"
    )
    assert rows == [int(s) for s in ids[PAGE_SIZE : 2 * PAGE_SIZE]]
    assert "rows 101\u2013200" in browser.js("document.getElementById('page').textContent")

    before = browser.rendered()
    browser.js(
        "const f = document.getElementById('filter'); f.value = 'm:depth_absrel>0.99 scenario=face';"
        "f.dispatchEvent(new Event('input'))"
    )
    browser.wait_rendered(before)
    expected = int(np.sum((absrel > 0.99) & (ids < 98040)))
    assert (
        browser.js("document.getElementById('count').textContent")
        == f"{expected} of {ROWS} samples"
    )
