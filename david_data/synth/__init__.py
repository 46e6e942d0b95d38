"""Synthetic SynthHuman data: samples and zip parts in the real layout, for tests,
demos and benchmarks (see :mod:`david_data.synth.generator`).

``david_data.synth.host.LocalHost`` serves such parts over loopback HTTP like the
official host; import it from there (it is not re-exported, to keep this import light).
The generator (OpenCV, OpenEXR) loads on first use of a name below, so importing
``david_data.synth.host`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real types for type checkers; at run time, the table below
    from .generator import PartInfo as PartInfo
    from .generator import SynthOptions as SynthOptions
    from .generator import encode_sample as encode_sample
    from .generator import format_intrinsics as format_intrinsics
    from .generator import part_sample_ids as part_sample_ids
    from .generator import sample_arrays as sample_arrays
    from .generator import write_extracted as write_extracted
    from .generator import write_part as write_part
    from .generator import write_parts as write_parts
else:
    from .. import _lazy

    __getattr__, __dir__, __all__ = _lazy.lazy_exports(
        __name__,
        {
            ".generator": (
                "PartInfo",
                "SynthOptions",
                "encode_sample",
                "format_intrinsics",
                "part_sample_ids",
                "sample_arrays",
                "write_extracted",
                "write_part",
                "write_parts",
            ),
        },
    )
