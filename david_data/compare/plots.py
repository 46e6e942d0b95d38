"""Pictures of a comparison, drawn with OpenCV in the style of :mod:`david_data.vis`.

Per compared metric, ``write_comparison`` writes into a folder::

    comparison.csv            the printed table (metric, scenario, n, means, B-A, interval)
    histogram_<metric>.png    per-sample values of A and B, one histogram per scenario
    bars_<metric>.png         mean of A and B per scenario, with B-A and its interval
    worst_<metric>.png        the samples where B is most worse than A, one row each:

    | RGB | ground truth | A | B | A error | B error |     <- each coloured map with its
                                                             colour bar and unit

Depth maps are the predictions aligned to the ground truth (``aligned_depth``), in cm on
the ground truth's colour range (INFERNO, nearer = brighter, as in ``vis``) and their
errors |aligned - gt| in cm; normals use the usual ``(n + 1) / 2`` RGB and their errors
are angles in degrees; foreground is the image composited over green (``vis``) and the
error |pred - gt| on the 0..1 alpha scale. Error maps use VIRIDIS, one range per row
(the 99th percentile of both runs' errors), so A and B read on the same bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import cv2
import numpy as np

from ..errors import StoreError
from ..facts import DEPTH_BACKGROUND, FOREGROUND_THRESHOLD
from ..fsutil import join, resolve, to_url
from ..infer.metrics import OVERALL, aligned_depth, angular_errors
from ..vis import (
    _ASCII,
    _CANVAS,
    _FONT,
    _TEXT,
    _TITLE_TEXT,
    BACKGROUND,
    _header,
    _labelled,
    _stack,
    colorize_normal,
    encode_png,
    foreground_over,
)
from .compare import METRIC_UNITS, Comparison, MetricPairs, task_of
from .defaults import DEFAULT_WORST

__all__ = [
    "bars_picture",
    "colorbar",
    "histogram_picture",
    "worst_picture",
    "write_comparison",
]

A_COLOR = (235, 160, 70)
"""BGR of run A in the charts (blue)."""
B_COLOR = (40, 150, 255)
"""BGR of run B in the charts (orange)."""
ERROR_COLORMAP = cv2.COLORMAP_VIRIDIS
DEPTH_COLORMAP = cv2.COLORMAP_INFERNO
_AXIS = (170, 170, 170)
_GRID = (56, 56, 56)
_BINS = 24
_PLOT_W, _PLOT_H = 440, 300
_BAR_W = 86


# --- text and axes -----------------------------------------------------------------------


def _text(
    image: np.ndarray,
    text: str,
    x: int,
    y: int,
    *,
    scale: float = 0.45,
    color: tuple[int, int, int] = _TEXT,
    align: str = "left",
) -> None:
    """Draw ASCII text with its baseline at ``y``; ``align`` says where ``x`` is."""
    s = text.translate(_ASCII).encode("ascii", "replace").decode("ascii")
    (w, _), _ = cv2.getTextSize(s, _FONT, scale, 1)
    x0 = x - (w // 2 if align == "center" else w if align == "right" else 0)
    cv2.putText(image, s, (x0, y), _FONT, scale, color, 1, cv2.LINE_AA)


def _fmt(value: float, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    text = f"{value:+.3g}" if sign else f"{value:.3g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


def _canvas(height: int, width: int) -> np.ndarray:
    out = np.empty((height, width, 3), np.uint8)
    out[:] = _CANVAS
    return out


def _legend(width: int, names: tuple[str, str]) -> np.ndarray:
    strip = _canvas(28, width)
    x = 12
    for label, name, color in zip(("A", "B"), names, (A_COLOR, B_COLOR), strict=True):
        cv2.rectangle(strip, (x, 8), (x + 14, 22), color, -1)
        _text(strip, f"{label}: {name}", x + 22, 20, scale=0.5)
        x += 30 + cv2.getTextSize(f"{label}: {name}", _FONT, 0.5, 1)[0][0] + 24
    return strip


def _titled(body: np.ndarray, title: str, names: tuple[str, str]) -> np.ndarray:
    head = _header(body.shape[1], title, color=_TITLE_TEXT, max_scale=0.75)
    return np.vstack([head, _legend(body.shape[1], names), body])


# --- charts ------------------------------------------------------------------------------


def _histogram_plot(
    a: np.ndarray, b: np.ndarray, edges: np.ndarray, title: str, xlabel: str
) -> np.ndarray:
    """One scenario's histograms of A and B on shared bins (values past the ends go to
    the end bins)."""
    left, right, top, bottom = 56, 30, 34, 52
    image = _canvas(_PLOT_H + top + bottom, _PLOT_W + left + right)
    x0, y0, x1, y1 = left, top, left + _PLOT_W, top + _PLOT_H
    clipped = [np.clip(v, edges[0], edges[-1]) for v in (a, b)]
    counts = [np.histogram(v, edges)[0] for v in clipped]
    ymax = 4 * max(1, math.ceil(int(max(c.max() for c in counts)) / 4))  # whole ticks
    xs = np.round(x0 + (edges - edges[0]) / (edges[-1] - edges[0]) * (x1 - x0)).astype(int)

    def y_of(count: float) -> int:
        return int(round(y1 - count / ymax * (y1 - y0)))

    for k in range(5):  # horizontal grid and count ticks
        y = y_of(ymax * k / 4)
        cv2.line(image, (x0, y), (x1, y), _GRID, 1)
        _text(image, str(ymax * k // 4), x0 - 6, y + 5, scale=0.4, align="right")
    for count, color in zip(counts, (A_COLOR, B_COLOR), strict=True):
        layer = image.copy()
        for i, c in enumerate(count):
            if c:
                cv2.rectangle(layer, (xs[i] + 1, y_of(c)), (xs[i + 1] - 1, y1), color, -1)
        image = cv2.addWeighted(layer, 0.45, image, 0.55, 0)
    for count, color in zip(counts, (A_COLOR, B_COLOR), strict=True):  # outlines on top
        points = [(xs[0], y1)]
        for i, c in enumerate(count):
            points += [(xs[i], y_of(c)), (xs[i + 1], y_of(c))]
        points.append((xs[-1], y1))
        cv2.polylines(image, [np.asarray(points, np.int32)], False, color, 2, cv2.LINE_AA)
    cv2.rectangle(image, (x0, y0), (x1, y1), _AXIS, 1)
    for k in range(5):
        x = int(round(x0 + k / 4 * (x1 - x0)))
        value = edges[0] + k / 4 * (edges[-1] - edges[0])
        cv2.line(image, (x, y1), (x, y1 + 5), _AXIS, 1)
        _text(image, _fmt(value), x, y1 + 20, scale=0.4, align="center")
    _text(image, xlabel, (x0 + x1) // 2, y1 + 44, scale=0.45, align="center")
    _text(image, title, x0, top - 12, scale=0.55)
    _text(image, "samples", 6, top - 12, scale=0.4, color=_AXIS)
    return image


def histogram_picture(comparison: Comparison, metric: str) -> np.ndarray:
    """Per-sample values of ``metric`` for A and B, one histogram per scenario and "all"."""
    pairs = comparison.pairs[metric]
    pooled = np.concatenate([pairs.a, pairs.b])
    if pooled.size:
        lo, hi = float(pooled.min()), float(np.percentile(pooled, 99))
    else:
        lo, hi = 0.0, 1.0
    if not hi > lo:
        lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
    edges = np.linspace(lo, hi, _BINS + 1)
    xlabel = f"{metric} ({METRIC_UNITS[metric]}), per sample"
    plots = []
    for row in comparison.rows:
        if row.metric != metric:
            continue
        select = slice(None) if row.scenario == OVERALL else pairs.scenarios == row.scenario
        title = f"{row.scenario}: n={row.interval.n}"
        plots.append(_histogram_plot(pairs.a[select], pairs.b[select], edges, title, xlabel))
    body = _stack(plots, axis=1, gap=8)
    title = f"{metric}: per-sample histograms by scenario (values over the 99th percentile in the last bin)"
    return _titled(body, title, (comparison.run_a, comparison.run_b))


def bars_picture(comparison: Comparison, metric: str) -> np.ndarray:
    """Mean ``metric`` of A and B per scenario, with B-A and its interval under each group."""
    rows = [r for r in comparison.rows if r.metric == metric]
    left, top, bottom, plot_h = 70, 40, 96, 300
    group_w = 2 * _BAR_W + 60
    width = left + group_w * len(rows) + 20
    image = _canvas(top + plot_h + bottom, width)
    means = [v for r in rows for v in (r.interval.mean_a, r.interval.mean_b) if math.isfinite(v)]
    ymin = min([0.0, *means])
    ymax = max([0.0, *means]) * 1.15 or 1.0
    y0, y1 = top, top + plot_h

    def y_of(value: float) -> int:
        return int(round(y1 - (value - ymin) / (ymax - ymin) * (y1 - y0)))

    for k in range(5):
        value = ymin + k / 4 * (ymax - ymin)
        y = y_of(value)
        cv2.line(image, (left, y), (width - 20, y), _GRID, 1)
        _text(image, _fmt(value), left - 6, y + 5, scale=0.4, align="right")
    for g, row in enumerate(rows):
        gx = left + g * group_w + 30
        i = row.interval
        for j, (value, color) in enumerate(((i.mean_a, A_COLOR), (i.mean_b, B_COLOR))):
            if not math.isfinite(value):
                continue
            bx = gx + j * _BAR_W
            cv2.rectangle(image, (bx + 4, y_of(value)), (bx + _BAR_W - 4, y_of(0.0)), color, -1)
            _text(image, _fmt(value), bx + _BAR_W // 2, y_of(value) - 6, scale=0.45, align="center")
        cx = gx + _BAR_W
        _text(image, f"{row.scenario} (n={i.n})", cx, y1 + 22, scale=0.5, align="center")
        _text(image, f"B-A {_fmt(i.diff, sign=True)}", cx, y1 + 46, scale=0.45, align="center")
        ci = f"[{_fmt(i.low, sign=True)}, {_fmt(i.high, sign=True)}]"
        _text(image, ci, cx, y1 + 66, scale=0.45, align="center")
        _text(image, row.verdict, cx, y1 + 86, scale=0.45, align="center", color=_TITLE_TEXT)
    cv2.line(image, (left, y1), (width - 20, y1), _AXIS, 1)
    cv2.line(image, (left, y0), (left, y1), _AXIS, 1)
    _text(image, f"mean {metric} ({METRIC_UNITS[metric]})", 8, top - 14, scale=0.45, color=_AXIS)
    pct = f"{comparison.confidence:.0%}"
    title = f"{metric} per scenario: means, B-A and its {pct} paired bootstrap interval"
    return _titled(image, title, (comparison.run_a, comparison.run_b))


# --- maps with colour bars ---------------------------------------------------------------


def _mapped(
    values: np.ndarray, mask: np.ndarray, lo: float, hi: float, colormap: int, *, invert: bool
) -> np.ndarray:
    """``values`` coloured on [lo, hi] where ``mask`` holds and they are finite; the rest
    is the flat :data:`~david_data.vis.BACKGROUND` grey."""
    v = np.asarray(values, np.float64)
    valid = mask & np.isfinite(v)
    t = np.clip((np.nan_to_num(v) - lo) / (hi - lo), 0.0, 1.0)
    if invert:
        t = 1.0 - t
    out: np.ndarray = cv2.applyColorMap(np.round(t * 255).astype(np.uint8), colormap)
    out[~valid] = BACKGROUND
    return out


def colorbar(
    height: int, lo: float, hi: float, unit: str, colormap: int, *, invert: bool = False
) -> np.ndarray:
    """A vertical colour bar, ``hi`` at the top, five labelled ticks and ``unit`` above."""
    width, top, bottom, x0, x1 = 84, 30, 12, 8, 24
    image = _canvas(height, width)
    length = height - top - bottom
    t = np.linspace(1.0, 0.0, length)
    if invert:
        t = 1.0 - t
    codes = np.round(t * 255).astype(np.uint8).reshape(-1, 1)
    strip = cv2.applyColorMap(codes, colormap)
    image[top : top + length, x0:x1] = np.repeat(strip, x1 - x0, axis=1)
    cv2.rectangle(image, (x0 - 1, top - 1), (x1, top + length), _AXIS, 1)
    for k in range(5):
        y = top + int(round(k / 4 * (length - 1)))
        cv2.line(image, (x1, y), (x1 + 4, y), _AXIS, 1)
        _text(image, _fmt(hi - k / 4 * (hi - lo)), x1 + 7, y + 5, scale=0.4)
    _text(image, unit, 4, 18, scale=0.45)
    return image


def _map_with_bar(
    values: np.ndarray,
    mask: np.ndarray,
    lo: float,
    hi: float,
    unit: str,
    colormap: int = ERROR_COLORMAP,
    *,
    invert: bool = False,
) -> np.ndarray:
    """``values`` coloured on [lo, hi] (see :func:`_mapped`) with its :func:`colorbar` beside."""
    tile = _mapped(values, mask, lo, hi, colormap, invert=invert)
    return np.hstack([tile, colorbar(tile.shape[0], lo, hi, unit, colormap, invert=invert)])


def _error_range(*errors: np.ndarray) -> float:
    pooled = np.concatenate([e[np.isfinite(e)].ravel() for e in errors])
    top = float(np.percentile(pooled, 99)) if pooled.size else 0.0
    return top if top > 0 else 1.0


def _depth_tiles(
    sample: Mapping[str, Any], a: str, b: str, names: tuple[str, str]
) -> list[tuple[str, np.ndarray]]:
    gt = np.asarray(sample["depth"], np.float64)
    solid = (np.asarray(sample["alpha"]) > FOREGROUND_THRESHOLD) & np.isfinite(gt)
    solid &= (gt > 0) & (gt < DEPTH_BACKGROUND)
    aligned = []
    for key in (a, b):
        pred = np.asarray(sample[key], np.float64)
        aligned.append(aligned_depth(pred, gt, solid & np.isfinite(pred)))
    lo, hi = np.percentile(gt[solid], (2, 98)) if solid.any() else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    errors = [np.where(solid, np.abs(x - gt), np.nan) for x in aligned]
    top = _error_range(*errors)

    def depth(v: np.ndarray) -> np.ndarray:  # nearer = brighter, as vis.colorize_depth
        return _map_with_bar(v, solid, lo, hi, "cm", DEPTH_COLORMAP, invert=True)

    return [
        ("Depth ground truth (cm)", depth(gt)),
        (f"A {names[0]} aligned (cm)", depth(aligned[0])),
        (f"B {names[1]} aligned (cm)", depth(aligned[1])),
        ("A |aligned - gt| (cm)", _map_with_bar(errors[0], solid, 0.0, top, "cm")),
        ("B |aligned - gt| (cm)", _map_with_bar(errors[1], solid, 0.0, top, "cm")),
    ]


def _angle_map(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-pixel angular error (degrees) where :func:`angular_errors` measures one; NaN elsewhere."""
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    np_, ng = np.linalg.norm(p, axis=2), np.linalg.norm(g, axis=2)
    valid = mask & np.isfinite(np_) & np.isfinite(ng) & (np_ > 1e-12) & (ng > 1e-12)
    out = np.full(mask.shape, np.nan)
    out[valid] = angular_errors(p, g, valid)
    return out


def _normal_tiles(
    sample: Mapping[str, Any], a: str, b: str, names: tuple[str, str]
) -> list[tuple[str, np.ndarray]]:
    gt = np.asarray(sample["normal"])
    solid = np.asarray(sample["alpha"]) > FOREGROUND_THRESHOLD
    errors = [_angle_map(sample[key], gt, solid) for key in (a, b)]
    top = _error_range(*errors)

    return [
        ("Normals ground truth", colorize_normal(gt, solid)),
        (f"A {names[0]}", colorize_normal(sample[a], solid)),
        (f"B {names[1]}", colorize_normal(sample[b], solid)),
        ("A angular error (deg)", _map_with_bar(errors[0], solid, 0.0, top, "deg")),
        ("B angular error (deg)", _map_with_bar(errors[1], solid, 0.0, top, "deg")),
    ]


def _foreground_tiles(
    sample: Mapping[str, Any], a: str, b: str, names: tuple[str, str]
) -> list[tuple[str, np.ndarray]]:
    image = np.ascontiguousarray(np.asarray(sample["rgb"])[..., ::-1])
    gt = np.asarray(sample["alpha"]).astype(np.float64) / 255.0
    everywhere = np.ones(gt.shape, bool)
    errors = [np.abs(np.clip(np.asarray(sample[k], np.float64), 0, 1) - gt) for k in (a, b)]
    top = min(1.0, _error_range(*errors))

    return [
        ("Foreground ground truth", foreground_over(gt, image=image)),
        (f"A {names[0]}", foreground_over(np.asarray(sample[a]), image=image)),
        (f"B {names[1]}", foreground_over(np.asarray(sample[b]), image=image)),
        ("A |pred - gt| (alpha 0-1)", _map_with_bar(errors[0], everywhere, 0.0, top, "alpha")),
        ("B |pred - gt| (alpha 0-1)", _map_with_bar(errors[1], everywhere, 0.0, top, "alpha")),
    ]


_TILES: dict[str, Callable[..., list[tuple[str, np.ndarray]]]] = {
    "depth": _depth_tiles,
    "normal": _normal_tiles,
    "foreground": _foreground_tiles,
}


def worst_picture(
    comparison: Comparison, metric: str, samples: Iterable[Mapping[str, Any]]
) -> np.ndarray:
    """One row per sample (from ``store.sample(id, runs=[a, b])``, worst first): RGB, the
    ground truth, A and B's predictions and their error maps with colour bars."""
    pairs: MetricPairs = comparison.pairs[metric]
    task = task_of(metric)
    names = (comparison.run_a, comparison.run_b)
    rows = []
    for rank, sample in enumerate(samples, 1):
        sid = int(sample["sample_id"])
        at = int(np.searchsorted(pairs.sample_ids, sid))
        va, vb = float(pairs.a[at]), float(pairs.b[at])
        keys = (f"{comparison.run_a}/{task}", f"{comparison.run_b}/{task}")
        for run, key in zip(names, keys, strict=True):
            if key not in sample:
                raise StoreError(
                    f"run {run} has metrics but no stored {task} prediction for sample {sid}; "
                    "rerun it with 'david-data evaluate STORE --model M --run NAME', or leave "
                    "the pictures of the worst samples out (--worst 0)"
                )
        tiles = [("RGB", np.ascontiguousarray(np.asarray(sample["rgb"])[..., ::-1]))]
        tiles += _TILES[task](sample, *keys, names)
        row = _stack([_labelled(t, label) for label, t in tiles], axis=1)
        title = (
            f"#{rank}  sample {sid} ({pairs.scenarios[at]}): {metric} "
            f"A {_fmt(va)}, B {_fmt(vb)}, B-A {_fmt(vb - va, sign=True)}"
        )
        rows.append(
            np.vstack([_header(row.shape[1], title, color=_TITLE_TEXT, max_scale=0.7), row])
        )
    if not rows:
        raise ValueError(f"no paired sample to draw for {metric}")
    body = _stack(rows, axis=0, gap=14)
    if pairs.worsening.size and pairs.worsening.max() > 0:
        head = f"{metric}: the {len(rows)} samples where B is most worse than A"
    else:  # still worth a look: where B's gain is smallest
        head = f"{metric}: B is worse than A on no sample; the {len(rows)} where it gains least"
    return np.vstack([_header(body.shape[1], head, color=_TITLE_TEXT, max_scale=0.8), body])


# --- writing -----------------------------------------------------------------------------


def write_comparison(
    comparison: Comparison,
    output: str,
    *,
    store: Any = None,
    worst: int = DEFAULT_WORST,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Write comparison.csv and, per metric, the histogram, bars and worst-samples PNGs
    (each atomically) into folder ``output``; return the written URLs. ``store`` (an open
    store or its URL; default the comparison's) supplies the worst samples' pixels;
    ``worst=0`` leaves that panel out."""
    import io

    import pyarrow.csv as pacsv

    from ..fsutil import atomic_write_bytes
    from ..store import SynthHumanStore, open_store
    from ..store.output import refuse_store

    fs, root = resolve(output, storage_options)
    refuse_store(fs, root, "output")
    fs.makedirs(root, exist_ok=True)
    written: list[str] = []

    def put(name: str, data: bytes) -> None:
        path = join(root, name)
        atomic_write_bytes(fs, path, data)
        written.append(to_url(fs, path))

    buffer = io.BytesIO()
    pacsv.write_csv(comparison.table(), buffer)
    put("comparison.csv", buffer.getvalue())
    st = store if isinstance(store, SynthHumanStore) else None
    for metric in comparison.metrics:
        put(f"histogram_{metric}.png", encode_png(histogram_picture(comparison, metric)))
        put(f"bars_{metric}.png", encode_png(bars_picture(comparison, metric)))
        ids = comparison.pairs[metric].worst(worst)
        if not ids.size:
            continue
        if st is None:
            st = open_store(store or comparison.store, storage_options)
        runs = [comparison.run_a, comparison.run_b]
        samples = (st.sample(int(s), runs=runs) for s in ids)
        put(f"worst_{metric}.png", encode_png(worst_picture(comparison, metric, samples)))
    return written
