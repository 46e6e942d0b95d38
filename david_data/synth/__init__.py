"""Synthetic SynthHuman data: samples and zip parts in the real layout, for tests,
demos and benchmarks (see :mod:`david_data.synth.generator`).

``david_data.synth.host.LocalHost`` serves such parts over loopback HTTP like the
official host; import it from there (it is not re-exported, to keep this import light).
"""

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
