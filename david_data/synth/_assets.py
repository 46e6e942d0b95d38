"""The real RGB crops behind synthetic samples, and the rough person shape on each.

Each asset is a 384 x 512 tile cut, pixel for pixel, from the DAViD preview grids
(``shared/synthhuman/preview/SynthHuman-{F,FB,UB}.jpg``, 3 x 2 grids of real renders,
CDLA-Permissive-2.0) and stored as PNG in ``assets/`` so a clone without ``../shared``
works. Three tiles per scenario (the grids' bottom rows). Regenerate them with
``python -m david_data.synth._assets PREVIEW_DIR``.

Every tile carries a hand-placed set of ellipsoids (head, torso, limbs) that roughly
covers the person in it, plus a focal length and a subject distance that suit the
scenario; :mod:`._geometry` ray-casts them into alpha, depth and normals.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from ..facts import HEIGHT, WIDTH

# Left edge of each column's 384 px window in the 1155 x 1024 preview grids. The tiles
# are 384 to 387 px wide with a one-pixel JPEG blend between them; the windows avoid it.
# Only the bottom row is used: the top row's tiles are three rows short of 512 above
# the horizontal seam.
_GRID_COLUMNS = {"F": (0, 385, 771), "FB": (0, 387, 771), "UB": (0, 386, 771)}


@dataclass(frozen=True, kw_only=True)
class Blob:
    """An ellipsoid given by where it shows in the tile (pixels) and its depth."""

    u: float
    """Centre column in the tile."""
    v: float
    """Centre row in the tile."""
    a: float
    """Half-width in pixels along the rotated horizontal axis."""
    b: float
    """Half-height in pixels along the rotated vertical axis."""
    angle: float = 0.0
    """Rotation in degrees, clockwise on screen."""
    dz: float = 0.0
    """Depth offset of the centre from the tile's subject distance, in cm."""
    thick: float = 1.0
    """Depth radius as a fraction of min(a, b) in world units."""


_SHOTS = {"face": ("F", 850.0), "full_body": ("FB", 520.0), "upper_body": ("UB", 700.0)}
"""Scenario -> the preview grid its tiles are cut from, and their focal length in pixels."""


@dataclass(frozen=True, kw_only=True)
class Tile:
    """One real RGB crop (column ``col`` of the bottom row of its scenario's preview grid)
    and the geometry placed on it."""

    scenario: str
    col: int
    z0: float
    """Subject distance in cm."""
    blobs: tuple[Blob, ...]

    @property
    def file(self) -> str:
        return f"{self.scenario}_{self.col}.png"

    @property
    def grid(self) -> str:
        return _SHOTS[self.scenario][0]

    @property
    def row(self) -> int:
        return 1  # the bottom row: see _GRID_COLUMNS

    @property
    def fx(self) -> float:
        """Focal length in pixels (fx = fy)."""
        return _SHOTS[self.scenario][1]


B = Blob
TILES: tuple[Tile, ...] = (
    # faces: about 60 cm away, long lens
    Tile(
        scenario="face",
        col=0,
        z0=58.0,
        blobs=(
            B(u=200, v=245, a=125, b=160),
            B(u=215, v=300, a=45, b=40, dz=-6, thick=0.6),
            B(u=185, v=490, a=190, b=110, dz=8, thick=0.5),
        ),
    ),
    Tile(
        scenario="face",
        col=1,
        z0=60.0,
        blobs=(
            B(u=195, v=250, a=115, b=165),
            B(u=195, v=275, a=35, b=40, dz=-8, thick=0.5),
            B(u=190, v=485, a=200, b=95, dz=9, thick=0.5),
        ),
    ),
    Tile(
        scenario="face",
        col=2,
        z0=64.0,
        blobs=(
            B(u=215, v=235, a=100, b=150),
            B(u=218, v=105, a=50, b=45, dz=2),
            B(u=190, v=470, a=190, b=95, dz=8, thick=0.5),
        ),
    ),
    # full body: a few metres away
    Tile(
        scenario="full_body",
        col=0,
        z0=300.0,
        blobs=(
            B(u=222, v=155, a=24, b=28),
            B(u=224, v=240, a=50, b=70, thick=0.6),
            B(u=208, v=365, a=16, b=72, angle=3),
            B(u=258, v=365, a=16, b=72, angle=-8),
            B(u=183, v=250, a=12, b=52, angle=3, dz=-4),
            B(u=268, v=240, a=12, b=46, angle=-5, dz=-4),
        ),
    ),
    Tile(
        scenario="full_body",
        col=1,
        z0=240.0,
        blobs=(
            B(u=232, v=185, a=24, b=30),
            B(u=230, v=262, a=40, b=52, thick=0.6),
            B(u=192, v=335, a=45, b=58, angle=30, dz=-8),
            B(u=245, v=350, a=55, b=30, angle=15, dz=-5),
            B(u=165, v=370, a=20, b=40, dz=-12),
        ),
    ),
    Tile(
        scenario="full_body",
        col=2,
        z0=280.0,
        blobs=(
            B(u=180, v=130, a=26, b=30),
            B(u=158, v=210, a=38, b=66, angle=5, thick=0.6),
            B(u=160, v=330, a=25, b=75, angle=10),
            B(u=195, v=345, a=22, b=70, angle=-25, dz=5),
        ),
    ),
    # upper body: about a metre away
    Tile(
        scenario="upper_body",
        col=0,
        z0=120.0,
        blobs=(
            B(u=170, v=190, a=55, b=60),
            B(u=185, v=330, a=75, b=105, thick=0.6),
            B(u=130, v=460, a=110, b=55, dz=-12, thick=0.6),
            B(u=50, v=360, a=20, b=60, angle=60, dz=-4),
        ),
    ),
    Tile(
        scenario="upper_body",
        col=1,
        z0=115.0,
        blobs=(
            B(u=140, v=180, a=55, b=65),
            B(u=150, v=330, a=85, b=95, thick=0.6),
            B(u=250, v=320, a=22, b=60, angle=-40, dz=-5),
            B(u=300, v=400, a=50, b=45, dz=-15),
            B(u=180, v=470, a=100, b=45, dz=-10, thick=0.6),
        ),
    ),
    Tile(
        scenario="upper_body",
        col=2,
        z0=125.0,
        blobs=(
            B(u=175, v=225, a=40, b=45),
            B(u=175, v=380, a=85, b=110, thick=0.6),
            B(u=85, v=430, a=18, b=70, angle=10, dz=-3),
            B(u=265, v=440, a=18, b=70, angle=-10, dz=-3),
        ),
    ),
)
del B


def tiles_for(scenario: str) -> tuple[Tile, ...]:
    """The tiles of one scenario, in a fixed order."""
    return tuple(t for t in TILES if t.scenario == scenario)


@cache
def load_rgb(file: str) -> np.ndarray:
    """The tile's pixels, (512, 384, 3) uint8 in RGB order (read-only)."""
    data = resources.files(__package__).joinpath("assets", file).read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape != (HEIGHT, WIDTH, 3):
        raise RuntimeError(f"synth asset {file} is damaged; reinstall david-data")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgb.flags.writeable = False
    return rgb


def cut_assets(preview_dir: Path, out_dir: Path) -> list[Path]:
    """Cut every tile of :data:`TILES` out of the preview grids into ``out_dir`` as PNG."""
    written = []
    for tile in TILES:
        grid = cv2.imread(str(preview_dir / f"SynthHuman-{tile.grid}.jpg"), cv2.IMREAD_COLOR)
        if grid is None:
            raise FileNotFoundError(f"cannot read SynthHuman-{tile.grid}.jpg in {preview_dir}")
        x0, y0 = _GRID_COLUMNS[tile.grid][tile.col], tile.row * HEIGHT
        crop = grid[y0 : y0 + HEIGHT, x0 : x0 + WIDTH]
        ok, png = cv2.imencode(".png", crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok or crop.shape != (HEIGHT, WIDTH, 3):
            raise RuntimeError(f"cannot cut {tile.file} from SynthHuman-{tile.grid}.jpg")
        path = out_dir / tile.file
        path.write_bytes(png.tobytes())
        written.append(path)
    return written


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/synthhuman/preview")
    for p in cut_assets(source, Path(__file__).parent / "assets"):
        print(p, p.stat().st_size)
