"""The browse report of a store with two runs, in a real browser: thumbnails of the
ground truth and of each run holding a sample, worst first, a click on a header sorts,
the filter narrows, a click opens the detail view, and the screenshots are pictures."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from browse_stores import SHOUTY_MODEL, RunStore
from browser_helpers import HEIGHT, WIDTH, Browser

from david_data.browse import browse
from david_data.browse.images import image_name
from david_data.store import open_store

SHOTS = Path("/tmp/browse-screenshots")
"""Where the screenshots are copied for a person to look at."""


def metric(store: RunStore, run: str, name: str) -> dict[int, float]:
    table = open_store(str(store.path)).query(
        f"SELECT sample_id, {name} AS v FROM metrics WHERE run = '{run}'"
    )
    return {
        int(s): float(v)
        for s, v in zip(
            table.column("sample_id").to_pylist(), table.column("v").to_pylist(), strict=True
        )
        if v is not None and not math.isnan(v)
    }


def row_ids(browser: Browser) -> list[int]:
    return list(
        browser.js(
            "Array.from(document.querySelectorAll('#samples tbody tr')).map(r => Number(r.dataset.sample))"
        )
    )


def check_screenshot(png: bytes, name: str) -> np.ndarray:
    """The screenshot is WIDTH x HEIGHT and shows a picture, not a blank page."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert float(image.std()) > 20
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 500, f"{len(colours)} colours: a blank or flat page"
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / name).write_bytes(png)
    return image


@pytest.fixture(scope="module")
def report(run_store: RunStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    result = browse(str(run_store.path), str(out), workers=2)
    assert result.failure_count == 0 and not result.interrupted, result.summary()
    # ground truth 4 x 2 sizes per sample; run full 3 fields x 2 (+ error) x 2 sizes per
    # sample; run half 1 x 2 x 2 on every other sample
    n = len(run_store.ids)
    assert result.drawn == n * 8 + n * 12 + len(run_store.ids[::2]) * 4
    return Path(result.index)


def test_page_shows_thumbnails_worst_first_sorts_filters_and_opens_a_sample(
    run_store: RunStore, report: Path, browser: Browser
) -> None:
    browser.open(report.as_uri())
    browser.wait_rendered(0)
    ids = run_store.ids
    half = set(ids[::2])
    assert row_ids(browser) and sorted(row_ids(browser)) == ids
    # thumbnails: 4 ground truth + 6 of run full on every row, + 2 of run half where it holds it
    expected = len(ids) * (4 + 6) + len(half) * 2
    assert browser.js("document.querySelectorAll('#samples img.thumb').length") == expected
    sizes = browser.visible_images("#samples img.thumb")
    assert sizes and all(s == [96, 128] for s in sizes), sizes

    # worst first by the first metric of the first run (full: foreground_sad, larger = worse)
    sad = metric(run_store, "full", "foreground_sad")
    assert row_ids(browser)[0] == max(sad, key=lambda s: sad[s])
    assert (
        browser.js("document.querySelector('th[aria-sort]').dataset.column")
        == "full:foreground_sad"
    )

    # a click on a metric's header sorts worst first, a second click best first
    absrel = metric(run_store, "half", "depth_absrel")
    before = browser.rendered()
    browser.js("document.querySelector('th[data-column=\"half:depth_absrel\"]').click()")
    browser.wait_rendered(before)
    worst = sorted(absrel, key=lambda s: -absrel[s])
    assert row_ids(browser)[: len(worst)] == worst  # samples without the metric come last
    before = browser.rendered()
    browser.js("document.querySelector('th[data-column=\"half:depth_absrel\"]').click()")
    browser.wait_rendered(before)
    assert row_ids(browser)[: len(worst)] == worst[::-1]

    # the filter box
    before = browser.rendered()
    browser.js(
        "const f = document.getElementById('filter'); f.value = 'full_body';"
        "f.dispatchEvent(new Event('input'))"
    )
    browser.wait_rendered(before)
    body = [s for s in ids if 98040 <= s < 198016]
    assert sorted(row_ids(browser)) == body
    shot = check_screenshot(browser.screenshot(), "table.png")
    assert shot is not None

    # the model name is HTML, shown as text
    about = browser.js("document.getElementById('about').textContent")
    assert SHOUTY_MODEL in about
    assert browser.js("document.querySelectorAll('#about img').length") == 0

    # open the first row's detail view with a click
    first = row_ids(browser)[0]
    before = browser.rendered()
    browser.js("document.querySelector('#samples tbody tr a.open').click()")
    browser.wait_rendered(before, view="detail")
    assert browser.js("location.hash") == f"#sample={first}"
    assert browser.js("document.getElementById('detail-title').textContent") == f"sample {first}"
    assert browser.js("document.getElementById('list').hidden") is True
    pictures = browser.js(
        "Array.from(document.querySelectorAll('#detail img.full')).map(i => i.getAttribute('src'))"
    )
    assert image_name(first, "rgb", "f") in pictures
    assert len(pictures) == 4 + 6 + (2 if first in half else 0)
    sizes = browser.visible_images("#detail img.full")
    assert sizes and all(s == [384, 512] for s in sizes), sizes
    values = browser.js(
        "Object.fromEntries(Array.from(document.querySelectorAll('#detail table.values tr')).map(r => [r.cells[0].textContent, r.cells[1].textContent]))"
    )
    assert values["sample_id"] == str(first)
    assert math.isclose(float(values["full:foreground_sad"]), sad[first], rel_tol=1e-3)
    check_screenshot(browser.screenshot(), "detail.png")

    # back to the table, as it was
    before = browser.rendered()
    browser.js("document.getElementById('back').click()")
    browser.wait_rendered(before)
    assert sorted(row_ids(browser)) == body


def test_pictures_show_the_arrays(run_store: RunStore, report: Path) -> None:
    """The RGB thumbnail is the sample's image made small; the full one its own size."""
    sid = run_store.ids[5]
    sample = open_store(str(run_store.path)).sample(sid)
    root = report.parent
    thumb = cv2.imread(str(root / image_name(sid, "rgb", "t")))
    full = cv2.imread(str(root / image_name(sid, "rgb", "f")))
    assert thumb.shape == (128, 96, 3) and full.shape == (512, 384, 3)
    want = cv2.resize(sample["rgb"][..., ::-1], (96, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(thumb.astype(int) - want.astype(int)).mean() < 6
    data = (root / "data.js").read_text()
    head = json.loads(data[data.index("{") : data.index(',\n"rows"')] + "}")
    assert [r["name"] for r in head["runs"]] == ["full", "half"]


def test_a_rerun_draws_only_missing_pictures(
    run_store: RunStore, report: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    shutil.copytree(report.parent, out)
    gone = out / image_name(run_store.ids[0], "full.01010101.normal-err", "t")
    gone.unlink()
    result = browse(str(run_store.path), str(out), workers=1)
    assert (result.drawn, result.failure_count) == (1, 0)
    assert result.kept == sum(1 for _ in (report.parent / "img").rglob("*.*")) - 1
    assert gone.stat().st_size > 0
    assert not list(out.rglob("*.tmp"))
