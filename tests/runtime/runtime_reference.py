"""An independent implementation of the DAViD reference pre/post-processing, for the tests.

Written from FORMAT.md and OpenCV's documented kernels, not from runtime.py: padding with
``np.pad(mode="edge")``, pyrDown as a 5-tap [1 4 6 4 1] / 16 Gaussian with reflect-101
borders keeping even samples, bilinear and bicubic (a = -0.75) resampling as separable
gathers with half-pixel centres and clamped taps; coefficients in float64, sums of the
few taps in float32 (rounding ~1e-7, far inside the tests' 1e-4).
"""

from __future__ import annotations

import numpy as np

SIZE = 512


def to_unit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        x = image.astype(np.float64) / 255.0
    elif image.dtype == np.uint16:
        x = image.astype(np.float64) / 65535.0
    else:
        x = image.astype(np.float64)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def padding(h: int, w: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) so that the image becomes a max(h, w) square."""
    if h < w:
        top = (w - h) // 2
        return top, w - h - top, 0, 0
    if w < h:
        left = (h - w) // 2
        return 0, 0, left, h - w - left
    return 0, 0, 0, 0


def pyr_down(x: np.ndarray) -> np.ndarray:
    """Blur with [1 4 6 4 1] / 16 along each axis (reflect-101 borders), keep even samples."""
    kernel = np.array([1, 4, 6, 4, 1], np.float32) / 16
    out = x
    for axis in (0, 1):
        m = (out.shape[axis] + 1) // 2
        pad = [(2, 2) if a == axis else (0, 0) for a in range(out.ndim)]
        padded = np.pad(out, pad, mode="reflect")  # numpy's reflect == OpenCV's REFLECT_101
        acc = np.zeros([m if a == axis else s for a, s in enumerate(out.shape)], np.float32)
        for k, weight in enumerate(kernel):
            window = [
                slice(k, k + 2 * m - 1, 2) if a == axis else slice(None) for a in range(out.ndim)
            ]
            acc += weight * padded[tuple(window)]
        out = acc
    return out


def _cubic(t: np.ndarray) -> np.ndarray:
    a = -0.75
    t = np.abs(t)
    return np.where(
        t <= 1,
        (a + 2) * t**3 - (a + 3) * t**2 + 1,
        np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0),
    )


def _taps(n_in: int, n_out: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (n_out, taps) of a resize along one axis; taps clamp to the edge."""
    centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(centre)
    frac = centre - base
    if kind == "linear":
        # OpenCV: a sample left of the first pixel or right of the last takes the edge value
        low, high = base < 0, base >= n_in - 1
        frac = np.where(low | high, 0.0, frac)
        first = np.where(low, 0, np.where(high, n_in - 1, base)).astype(np.int64)
        idx = np.stack([first, first + 1], axis=1)
        weights = np.stack([1 - frac, frac], axis=1)
    else:
        offsets = np.arange(-1, 3)
        idx = base[:, None].astype(np.int64) + offsets[None, :]
        weights = _cubic(frac[:, None] - offsets[None, :])
    return np.clip(idx, 0, n_in - 1), weights


def resize(
    x: np.ndarray, out_h: int, out_w: int, kind: str, crop: tuple[slice, slice] | None = None
) -> np.ndarray:
    """Resize (H, W[, C]) float to (out_h, out_w[, C]) (``kind``: linear or cubic).

    ``crop`` (rows, cols) computes only that window of the result.
    """
    rows, cols = crop or (slice(0, out_h), slice(0, out_w))
    if x.shape[:2] == (out_h, out_w):
        return x[rows, cols].astype(np.float32)
    out = x.astype(np.float32)  # taps are few (2 or 4): float32 sums stay within ~1e-7
    for axis, n_out, keep in ((0, out_h, rows), (1, out_w, cols)):
        idx, weights = _taps(out.shape[axis], n_out, kind)
        idx, weights = idx[keep], weights[keep].astype(np.float32)
        acc = np.zeros([len(idx) if a == axis else s for a, s in enumerate(out.shape)], np.float32)
        for k in range(idx.shape[1]):
            shape = [1] * out.ndim
            shape[axis] = len(idx)
            acc += weights[:, k].reshape(shape) * np.take(out, idx[:, k], axis=axis)
        out = acc
    return out.astype(np.float32)


def preprocess(image: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(3, 512, 512) input and the geometry (h, w, top, bottom, left, right)."""
    x = to_unit(image)
    h, w = x.shape[:2]
    top, bottom, left, right = padding(h, w)
    square = np.pad(x, ((top, bottom), (left, right), (0, 0)), mode="edge")
    while square.shape[0] > 3 * SIZE and square.shape[1] > 3 * SIZE:
        square = pyr_down(square)
    return resize(square, SIZE, SIZE, "linear").transpose(2, 0, 1), (h, w, top, bottom, left, right)


def back(plane: np.ndarray, geometry: tuple[int, ...]) -> np.ndarray:
    """A (512, 512[, C]) output resized (bicubic) to the padded square, then the padding cropped."""
    h, w, top, bottom, left, right = geometry
    side = h + top + bottom
    crop = (slice(top, side - bottom), slice(left, side - right))
    if plane.ndim == 3:
        return np.stack(
            [resize(plane[..., c], side, side, "cubic", crop) for c in range(plane.shape[2])], -1
        )
    return resize(plane, side, side, "cubic", crop)


def post_depth(raw: np.ndarray, geometry: tuple[int, ...]) -> np.ndarray:
    return back(raw.reshape(SIZE, SIZE), geometry)


def post_normal(raw: np.ndarray, geometry: tuple[int, ...]) -> np.ndarray:
    return normalise(back(raw.transpose(1, 2, 0), geometry))


def normalise(n: np.ndarray) -> np.ndarray:
    length = np.sqrt(np.einsum("...c,...c->...", n, n, dtype=np.float64))
    return n / (length[..., None] + 1e-8).astype(np.float32)


def post_foreground(raw: np.ndarray, geometry: tuple[int, ...]) -> np.ndarray:
    return np.clip(back(raw.reshape(SIZE, SIZE), geometry), 0, 1)


def analytic_raw(chw: np.ndarray) -> dict[str, np.ndarray]:
    """What the analytic test models compute from a (3, 512, 512) BGR input."""
    b, g, r = chw.astype(np.float64)
    return {
        "depth": (b + g + r) / 3,
        "normal": np.stack([b - 0.5, g - 0.5, np.ones_like(b)]),
        "foreground": 1.5 * r - 0.25,
    }
