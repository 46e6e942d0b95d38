"""Headless pictures of samples and predictions, in the style of the official DAViD scripts.

Everything returns BGR ``uint8`` images ready for ``cv2.imwrite`` or :func:`encode_png`;
nothing opens a window and nothing imports matplotlib. The conventions follow the
official ``visualize_data.py`` and demo:

- depth: the ``INFERNO`` colour map over the foreground, nearer = brighter, background flat;
  the colour range is the 2nd to 98th percentile of the depth inside the mask, so a few
  stray pixels do not wash the picture out;
- normals: ``(n + 1) / 2 * 255`` with X, Y, Z in the red, green and blue channels;
- foreground: the image composited with the soft mask over a flat green.

A panel is a row of tiles, each with a header strip naming it::

    +-----------+-----------+-----------+-----------+
    | RGB       | Depth     | Foreground| Normals   |   <- header strips
    |  image    |  image    |  image    |  image    |
    +-----------+-----------+-----------+-----------+
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from .facts import DEPTH_BACKGROUND, FOREGROUND_THRESHOLD

__all__ = [
    "BACKGROUND",
    "FOREGROUND_COLOR",
    "colorize_depth",
    "colorize_normal",
    "comparison_panel",
    "encode_png",
    "foreground_over",
    "grid",
    "prediction_panel",
    "sample_panel",
]

BACKGROUND = (58, 58, 58)
"""Flat BGR colour of masked-out pixels: a neutral grey that no colour map uses."""
FOREGROUND_COLOR = (0, 255, 0)
"""BGR colour behind the foreground, as in the official scripts (green)."""
DEPTH_PERCENTILES = (2.0, 98.0)
"""Depth values below/above these percentiles (inside the mask) take the end colours."""

_CANVAS = (24, 24, 24)
_HEADER = (36, 36, 36)
_GRID_HEADER = (72, 52, 34)
_TEXT = (240, 240, 240)
_TITLE_TEXT = (140, 220, 255)
_FONT = cv2.FONT_HERSHEY_DUPLEX
_GAP = 4
_GRID_GAP = 12
_MIN_TILE_HEIGHT = 192
_MAX_TILE_HEIGHT = 512
_PREDICTION_KEYS = ("depth", "normal", "foreground")
# Hershey fonts draw ASCII only; common symbols get an ASCII stand-in.
_ASCII = str.maketrans({"·": "|", "×": "x", "°": " deg", "—": "-", "–": "-", "…": "..."})


# --- colouring ---------------------------------------------------------------------------


def colorize_depth(
    depth: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    near_is_larger: bool = False,
    colormap: int = cv2.COLORMAP_INFERNO,
    background: tuple[int, int, int] = BACKGROUND,
) -> np.ndarray:
    """Colour a depth map over ``mask`` (nearer = brighter); other pixels are ``background``.

    ``depth`` is (H, W) float: distances such as SynthHuman's centimetres by default, or a
    relative inverse depth (a DAViD model's output) with ``near_is_larger=True``. Pixels
    that are not finite or hold the background value 65504 never count. The range is the
    2nd to 98th percentile over the counted pixels; an empty mask gives a flat image.
    """
    values = np.asarray(depth, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {values.shape}")
    valid = np.isfinite(values) & (np.abs(values) < DEPTH_BACKGROUND)
    if mask is not None:
        valid &= _bool_mask(mask, values.shape)
    out = np.empty((*values.shape, 3), np.uint8)
    out[:] = background
    if not valid.any():
        return out
    inside = values[valid]
    lo, hi = np.percentile(inside, DEPTH_PERCENTILES)
    if hi > lo:
        t = np.clip((inside - lo) / (hi - lo), 0.0, 1.0)
    else:
        t = np.full(inside.shape, 0.5, np.float32)
    if not near_is_larger:
        t = 1.0 - t
    codes = np.round(t * 255.0).astype(np.uint8).reshape(-1, 1)
    out[valid] = cv2.applyColorMap(codes, colormap).reshape(-1, 3)
    return out


def colorize_normal(
    normal: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    background: tuple[int, int, int] = BACKGROUND,
) -> np.ndarray:
    """Colour unit normals (H, W, 3) in [-1, 1] as ``(n + 1) / 2 * 255``: X red, Y green, Z blue.

    Pixels outside ``mask`` or with a non-finite component are ``background``.
    """
    values = np.asarray(normal, dtype=np.float32)
    if values.ndim != 3 or values.shape[2] != 3:
        raise ValueError(f"normal must be (H, W, 3), got shape {values.shape}")
    valid = np.isfinite(values).all(axis=2)
    if mask is not None:
        valid &= _bool_mask(mask, values.shape[:2])
    rgb = np.clip((np.nan_to_num(values) + 1.0) * 127.5, 0.0, 255.0)
    out: np.ndarray = np.round(rgb[..., ::-1]).astype(np.uint8)  # numpy's stubs: Any here
    out[~valid] = background
    return out


def foreground_over(
    fg: np.ndarray,
    color: tuple[int, int, int] = FOREGROUND_COLOR,
    *,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """Composite a soft foreground over a flat BGR ``color``.

    ``fg`` is (H, W) in [0, 1] (uint8/uint16 masks are scaled from their full range).
    With ``image`` (BGR, same size) the image shows through the mask, as in the official
    scripts; without it the foreground is white.
    """
    alpha = _unit_mask(fg)
    if image is None:
        front = np.full((*alpha.shape, 3), 255.0, np.float32)
    else:
        front = _to_bgr8(image).astype(np.float32)
        if front.shape[:2] != alpha.shape:
            raise ValueError(f"image {front.shape[:2]} and foreground {alpha.shape} differ in size")
    return _blend(front, np.asarray(color, np.float32), alpha)


# --- panels ------------------------------------------------------------------------------


def sample_panel(
    rgb: np.ndarray,
    alpha: np.ndarray,
    depth: np.ndarray,
    normal: np.ndarray,
    title: str | None = None,
) -> np.ndarray:
    """One SynthHuman sample as RGB | Depth | Foreground | Normals, like ``visualize_data.py``.

    ``rgb`` is RGB uint8 (H, W, 3), ``alpha`` uint8 (H, W), ``depth`` in cm with 65504 as
    background, ``normal`` (H, W, 3) X, Y, Z. Depth and normals show where alpha > 127.
    """
    image = _to_bgr8(np.asarray(rgb)[..., ::-1])
    soft = _unit_mask(alpha)
    solid = np.asarray(alpha) > FOREGROUND_THRESHOLD
    tiles = [
        ("RGB", image),
        ("Depth", colorize_depth(depth, solid)),
        ("Foreground", foreground_over(soft, image=image)),
        ("Normals", colorize_normal(normal, solid)),
    ]
    return _panel(tiles, title)


def prediction_panel(
    image_bgr: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    title: str | None = None,
) -> np.ndarray:
    """Input | Depth | Normals | Foreground for one image's model outputs, like the DAViD demo.

    ``outputs`` holds any of ``depth`` (H, W) relative, larger = nearer; ``normal``
    (H, W, 3); ``foreground`` (H, W) in [0, 1]; all at the input's size. When a
    foreground is present, depth and normals are shown only where it exceeds 0.5.
    """
    unknown = set(outputs) - set(_PREDICTION_KEYS)
    if unknown:
        raise ValueError(
            f"unknown output(s) {sorted(unknown)}; expected among {', '.join(_PREDICTION_KEYS)}"
        )
    image = _to_bgr8(image_bgr)
    for key, value in outputs.items():
        if np.shape(value)[:2] != image.shape[:2]:
            raise ValueError(
                f"output {key!r} is {np.shape(value)[:2]} but the image is {image.shape[:2]}"
            )
    fg = outputs.get("foreground")
    mask = None if fg is None else _unit_mask(fg) > 0.5
    tiles = [("Input", image)]
    if "depth" in outputs:
        tiles.append(("Depth", colorize_depth(outputs["depth"], mask, near_is_larger=True)))
    if "normal" in outputs:
        tiles.append(("Normals", colorize_normal(outputs["normal"], mask)))
    if fg is not None:
        tiles.append(("Foreground", foreground_over(fg, image=image)))
    return _panel(tiles, title)


def comparison_panel(
    image_bgr: np.ndarray,
    individual: Mapping[str, np.ndarray],
    multitask: Mapping[str, np.ndarray],
) -> np.ndarray:
    """Individual models' outputs above the multi-task model's, one labelled row each."""
    rows = [
        prediction_panel(image_bgr, individual, title="Individual models"),
        prediction_panel(image_bgr, multitask, title="Multi-task model"),
    ]
    return _stack(rows, axis=0)


def grid(images: Sequence[np.ndarray], labels: Sequence[str], columns: int = 4) -> np.ndarray:
    """Lay images out in rows of ``columns``, each under a header strip with its label.

    Images may differ in size; each sits top-left in a cell as large as the largest one.
    """
    if len(images) != len(labels):
        raise ValueError(f"grid got {len(images)} images but {len(labels)} labels")
    if not images:
        raise ValueError("grid needs at least one image")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    tiles = []
    for image, label in zip(images, labels, strict=True):
        tile = _to_bgr8(image)
        head = _header(tile.shape[1], label, color=_TEXT, max_scale=0.7, fill=_GRID_HEADER)
        tiles.append(np.vstack([head, tile]))
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    cells = [_pad_to(t, cell_h, cell_w) for t in tiles]
    cells += [_pad_to(cells[0][:0, :0], cell_h, cell_w)] * (-len(cells) % columns)
    rows = [
        _stack(cells[i : i + columns], axis=1, gap=_GRID_GAP) for i in range(0, len(cells), columns)
    ]
    return _stack(rows, axis=0, gap=_GRID_GAP)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a BGR (or grey) uint8 image."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {np.shape(image)} as PNG")
    return buf.tobytes()


# --- helpers -----------------------------------------------------------------------------


def _bool_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"mask is {m.shape} but the image is {tuple(shape)}")
    if m.dtype == bool:
        return m
    return np.nan_to_num(m.astype(np.float32)) > 0


def _unit_mask(fg: np.ndarray) -> np.ndarray:
    """A (H, W) float32 mask in [0, 1]; integer masks scale from their full range; NaN = 0."""
    m = np.asarray(fg)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"a foreground mask must be (H, W), got shape {m.shape}")
    if m.dtype == bool:
        return m.astype(np.float32)
    if np.issubdtype(m.dtype, np.integer):
        return m.astype(np.float32) / float(np.iinfo(m.dtype).max)
    return np.clip(np.nan_to_num(m.astype(np.float32)), 0.0, 1.0)


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any grey/BGR/BGRA image of uint8, uint16 or float in [0, 1] as BGR uint8."""
    im = np.asarray(image)
    if im.ndim == 3 and im.shape[2] == 1:
        im = im[..., 0]
    if im.ndim == 2:
        im = np.repeat(im[..., None], 3, axis=2)
    if im.ndim != 3 or im.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey, BGR or BGRA image, got shape {im.shape}")
    im = im[..., :3]
    if im.dtype == np.uint8:
        return np.ascontiguousarray(im)
    if im.dtype == np.uint16:
        return np.round(im.astype(np.float32) / 257.0).astype(np.uint8)
    if im.dtype == bool:
        return im.astype(np.uint8) * 255
    scaled = np.clip(np.nan_to_num(im.astype(np.float32)), 0.0, 1.0) * 255.0
    return np.round(scaled).astype(np.uint8)


def _blend(front: np.ndarray, back: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    blended: np.ndarray = np.round(front * a + back * (1.0 - a)).astype(np.uint8)  # stubs: Any
    return blended


def _display_size(h: int, w: int) -> tuple[int, int]:
    """Tile size for an image: large ones shrink to 512 rows, tiny ones grow to 192."""
    target = min(max(h, _MIN_TILE_HEIGHT), _MAX_TILE_HEIGHT)
    return target, max(1, round(w * target / h))


def _fit_text(text: str, width: int, max_scale: float) -> tuple[str, float, int]:
    """The label (ASCII, shortened if need be), font scale and thickness that fit ``width``."""
    text = text.translate(_ASCII).encode("ascii", "replace").decode("ascii")
    scale = max_scale
    while True:
        thickness = 1
        (tw, _), _ = cv2.getTextSize(text, _FONT, scale, thickness)
        if tw <= width or (scale <= 0.4 and len(text) <= 4):
            return text, scale, thickness
        if scale > 0.4:
            scale = round(scale - 0.05, 2)
        else:
            text = text[: max(1, len(text) - 4)] + "..."


def _header(
    width: int,
    text: str,
    *,
    color: tuple[int, int, int],
    max_scale: float,
    fill: tuple[int, int, int] = _HEADER,
) -> np.ndarray:
    height = 30 if max_scale <= 0.6 else 34
    strip = np.empty((height, width, 3), np.uint8)
    strip[:] = fill
    label, scale, thickness = _fit_text(text, width - 16, max_scale)
    (_, th), _ = cv2.getTextSize(label, _FONT, scale, thickness)
    baseline_y = (height + th) // 2
    cv2.putText(strip, label, (8, baseline_y), _FONT, scale, color, thickness, cv2.LINE_AA)
    return strip


def _labelled(tile: np.ndarray, label: str) -> np.ndarray:
    return np.vstack([_header(tile.shape[1], label, color=_TEXT, max_scale=0.6), tile])


def _panel(tiles: list[tuple[str, np.ndarray]], title: str | None) -> np.ndarray:
    h, w = tiles[0][1].shape[:2]
    size = _display_size(h, w)
    interp = cv2.INTER_AREA if size[0] < h else cv2.INTER_NEAREST
    resized = [
        (label, t if t.shape[:2] == size else cv2.resize(t, size[::-1], interpolation=interp))
        for label, t in tiles
    ]
    row = _stack([_labelled(t, label) for label, t in resized], axis=1)
    if title:
        head = _header(row.shape[1], title, color=_TITLE_TEXT, max_scale=0.75)
        row = np.vstack([head, row])
    return row


def _pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.empty((height, width, 3), np.uint8)
    out[:] = _CANVAS
    out[: image.shape[0], : image.shape[1]] = image
    return out


def _stack(images: list[np.ndarray], axis: int, gap: int = _GAP) -> np.ndarray:
    """Concatenate with a canvas-coloured gap, padding the other axis to fit."""
    if axis == 1:
        height = max(im.shape[0] for im in images)
        parts = [_pad_to(im, height, im.shape[1]) for im in images]
        spacer = _pad_to(parts[0][:0, :0], height, gap)
    else:
        width = max(im.shape[1] for im in images)
        parts = [_pad_to(im, im.shape[0], width) for im in images]
        spacer = _pad_to(parts[0][:0, :0], gap, width)
    joined: list[np.ndarray] = []
    for i, part in enumerate(parts):
        if i:
            joined.append(spacer)
        joined.append(part)
    return np.concatenate(joined, axis=axis)
