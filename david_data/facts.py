"""Facts about SynthHuman and the DAViD models, in one place.

Everything here comes from ``shared/synthhuman/FORMAT.md``. Code elsewhere uses these
names instead of literals. Parts are identified by their remote file name
(``SynthHuman_0007.zip``); samples by their global integer id (0 ... 298,007).

Layout of one sample (``ID`` = 7-digit zero-padded id)::

    rgb_ID.png      8-bit, 3 channels (BGR through OpenCV)
    alpha_ID.png    8-bit grey soft foreground
    depth_ID.exr    z-depth in cm, one channel; background = 65504
    normal_ID.exr   3 channels X, Y, Z
    cam_ID.txt      3x3 intrinsics: fx 0 cx / 0 fy cy / 0 0 1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._parse import parse_ranges
from .errors import ConfigError

DATA_BASE_URL: Final = "https://facesyntheticspubwedata.z6.web.core.windows.net/iccv-2025/data/"
MODELS_BASE_URL: Final = "https://facesyntheticspubwedata.z6.web.core.windows.net/iccv-2025/models/"

NUM_PARTS: Final = 60
SAMPLES_PER_PART: Final = 5000
NUM_SAMPLES: Final = 298_008
SAMPLE_PART: Final = "SynthHuman_sample.zip"
EXTRACT_FOLDER: Final = "SynthHuman"

WIDTH: Final = 384
HEIGHT: Final = 512
DEPTH_BACKGROUND: Final = 65504.0
"""Depth value of pixels with no surface: the largest float16."""
FOREGROUND_THRESHOLD: Final = 127
"""Alpha above this counts as foreground for per-sample statistics."""

FILE_KINDS: Final = ("rgb", "alpha", "depth", "normal", "cam")
FILE_EXTENSIONS: Final = {
    "rgb": "png",
    "alpha": "png",
    "depth": "exr",
    "normal": "exr",
    "cam": "txt",
}

SCENARIOS: Final = ("face", "full_body", "upper_body")
_SCENARIO_STARTS: Final = ((0, "face"), (98_040, "full_body"), (198_016, "upper_body"))

_PART_RE: Final = re.compile(r"^SynthHuman_(\d{4})\.zip$")
_MEMBER_RE: Final = re.compile(r"^(rgb|alpha|depth|normal|cam)_(\d{7})\.(png|exr|txt)$")


def part_name(index: int) -> str:
    """Remote file name of part ``index`` (0 ... 59): ``SynthHuman_0007.zip``."""
    if not 0 <= index < NUM_PARTS:
        raise ConfigError(
            f"part index {index} is out of range: SynthHuman has parts 0 to {NUM_PARTS - 1}"
        )
    return f"SynthHuman_{index:04d}.zip"


def part_index(name: str) -> int | None:
    """Index of a numbered part from its file name, or None (e.g. for the sample part)."""
    match = _PART_RE.match(name.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def is_part_name(name: str) -> bool:
    """True for ``SynthHuman_NNNN.zip`` and ``SynthHuman_sample.zip``."""
    base = name.rsplit("/", 1)[-1]
    return base == SAMPLE_PART or _PART_RE.match(base) is not None


def all_part_names() -> list[str]:
    """The 60 numbered parts, in order."""
    return [part_name(i) for i in range(NUM_PARTS)]


def parse_parts(spec: str) -> list[str]:
    """Parse a part selection: ``all``, ``sample``, or indices and ranges like ``0-3,7``.

    Returns part file names in ascending order without duplicates.
    """
    text = spec.strip().lower()
    if text == "all":
        return all_part_names()
    if text == "sample":
        return [SAMPLE_PART]
    ranges = parse_ranges(
        spec,
        stop=NUM_PARTS,
        what="part selection",
        unit="part",
        usage="'all', 'sample', or indices and ranges such as '0-3,7'",
    )
    return [part_name(i) for i in sorted({i for lo, hi in ranges for i in range(lo, hi + 1)})]


def parse_sample_ids(spec: str) -> list[tuple[int, int]]:
    """``"0-999,120000"`` -> ``[(0, 999), (120000, 120000)]``: inclusive ranges of sample
    ids, in the order written."""
    return parse_ranges(
        spec,
        stop=NUM_SAMPLES,
        what="sample ids",
        unit="sample id",
        usage="ids and ranges such as '0-999,120000'",
    )


def part_url(name: str, base_url: str = DATA_BASE_URL) -> str:
    """URL of a part under ``base_url`` (a trailing slash is added when missing)."""
    return base_url.rstrip("/") + "/" + name


def expected_sample_ids(name: str) -> range | None:
    """The sample ids a numbered part most likely holds (5000 consecutive ids).

    FORMAT.md calls this layout likely, not certain: use it for planning and display,
    never to reject a part. Returns None for the sample part.
    """
    index = part_index(name)
    if index is None:
        return None
    start = index * SAMPLES_PER_PART
    return range(min(start, NUM_SAMPLES), min(start + SAMPLES_PER_PART, NUM_SAMPLES))


def scenario_of(sample_id: int) -> str:
    """Scenario of a sample: ``face``, ``full_body`` or ``upper_body``."""
    if not 0 <= sample_id < NUM_SAMPLES:
        raise ConfigError(f"sample id {sample_id} is out of range 0 ... {NUM_SAMPLES - 1}")
    scenario = _SCENARIO_STARTS[0][1]
    for start, name in _SCENARIO_STARTS:
        if sample_id >= start:
            scenario = name
    return scenario


def scenario_range(scenario: str) -> range:
    """The sample ids of one scenario."""
    bounds = [start for start, _ in _SCENARIO_STARTS] + [NUM_SAMPLES]
    for i, (_, name) in enumerate(_SCENARIO_STARTS):
        if name == scenario:
            return range(bounds[i], bounds[i + 1])
    raise ConfigError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")


def member_name(kind: str, sample_id: int) -> str:
    """File name of one file of a sample, e.g. ``member_name('rgb', 7) == 'rgb_0000007.png'``."""
    if kind not in FILE_EXTENSIONS:
        raise ConfigError(f"unknown file kind {kind!r}; expected one of {', '.join(FILE_KINDS)}")
    return f"{kind}_{sample_id:07d}.{FILE_EXTENSIONS[kind]}"


def sample_member_names(sample_id: int) -> dict[str, str]:
    """The five file names of one sample, keyed by kind."""
    return {kind: member_name(kind, sample_id) for kind in FILE_KINDS}


@dataclass(frozen=True, kw_only=True)
class MemberRef:
    """A parsed sample file name."""

    kind: str
    sample_id: int


def parse_member_name(name: str) -> MemberRef | None:
    """Parse a zip member or file path; the folder part is ignored.

    Returns None when the base name is not a SynthHuman sample file.
    """
    match = _MEMBER_RE.match(name.rsplit("/", 1)[-1])
    if match is None or FILE_EXTENSIONS[match.group(1)] != match.group(3):
        return None
    return MemberRef(kind=match.group(1), sample_id=int(match.group(2)))


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """One released DAViD ONNX model."""

    name: str
    task: str
    """``depth``, ``normal``, ``foreground`` or ``multitask``."""
    file: str
    size_mb: float
    gmacs: float

    @property
    def url(self) -> str:
        return MODELS_BASE_URL + self.file


MODEL_TASKS: Final = ("depth", "normal", "foreground", "multitask")
MODEL_INPUT_SIZE: Final = 512

MODELS: Final = {
    m.name: m
    for m in (
        ModelInfo(
            name="foreground-base",
            task="foreground",
            file="foreground-segmentation-model-vitb16_384.onnx",
            size_mb=428.42,
            gmacs=172.4,
        ),
        ModelInfo(
            name="foreground-large",
            task="foreground",
            file="foreground-segmentation-model-vitl16_384.onnx",
            size_mb=1314.13,
            gmacs=331.5,
        ),
        ModelInfo(
            name="depth-base",
            task="depth",
            file="depth-model-vitb16_384.onnx",
            size_mb=428.42,
            gmacs=172.4,
        ),
        ModelInfo(
            name="depth-large",
            task="depth",
            file="depth-model-vitl16_384.onnx",
            size_mb=1314.13,
            gmacs=331.5,
        ),
        ModelInfo(
            name="normal-base",
            task="normal",
            file="normal-model-vitb16_384.onnx",
            size_mb=428.42,
            gmacs=172.4,
        ),
        ModelInfo(
            name="normal-large",
            task="normal",
            file="normal-model-vitl16_384.onnx",
            size_mb=1314.13,
            gmacs=331.5,
        ),
        ModelInfo(
            name="multitask-large",
            task="multitask",
            file="multi-task-model-vitl16_384.onnx",
            size_mb=1316.66,
            gmacs=389.9,
        ),
    )
}
