"""Synthetic SynthHuman data: samples and zip parts in the real layout, for tests,
demos and benchmarks (see :mod:`david_data.synth.generator`).

``david_data.synth.host.LocalHost`` serves such parts over loopback HTTP like the
official host; import it from there (it is not re-exported, to keep this import light).
The generator (OpenCV, OpenEXR) loads on first use of a name below, so importing
``david_data.synth.host`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, loaded on first use
    from .generator import (
        PartInfo,
        SynthOptions,
        encode_sample,
        format_intrinsics,
        part_sample_ids,
        sample_arrays,
        write_extracted,
        write_part,
        write_parts,
    )
else:
    from .. import _lazy

    __getattr__, __dir__ = _lazy.lazy_exports(__name__)

__all__ = [
    "PartInfo",
    "SynthOptions",
    "encode_sample",
    "format_intrinsics",
    "part_sample_ids",
    "sample_arrays",
    "write_extracted",
    "write_part",
    "write_parts",
]
