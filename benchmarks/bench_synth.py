"""How fast the synthetic generator makes samples, against the bare encoders.

Baseline, in the same run: encoding ready-made arrays with the same encoders
(cv2.imencode for the two PNGs, OpenEXR for the two EXRs), i.e. the cost any writer of
the source format pays. Ours: ``encode_sample`` (build the arrays, then encode) and
``write_part`` (plus the zip stream to a local file). perf-baselines.md quotes ~22.6 ms
to encode one sample as the source zips hold it.

Run: ``.venv/bin/python benchmarks/bench_synth.py [--quick]``. Prints medians over
repeats and the ratios; peak traced memory for a part of 5 and of 4x as many samples.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from david_data.exr import encode_exr
from david_data.synth import encode_sample, sample_arrays, write_part
from david_data.synth.generator import PNG_LEVEL


def _bare_encode(arrays: dict[str, np.ndarray]) -> int:
    size = len(cv2.imencode(".png", cv2.cvtColor(arrays["rgb"], cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])[1])  # fmt: skip
    size += len(cv2.imencode(".png", arrays["alpha"], [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])[1])
    size += len(encode_exr(arrays["depth"].astype(np.float16), ("Y",)))
    size += len(encode_exr(arrays["normal"].astype(np.float16), ("X", "Y", "Z")))
    return size


def _ms(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    args = parser.parse_args()
    count, repeats = (12, 3) if args.quick else (40, 5)
    # Spread over all scenarios; warm the per-render caches first (once per process).
    ids = [int(i) for i in np.linspace(0, 298_007, count)]
    for i in ids:
        encode_sample(i)
    arrays = {i: sample_arrays(i) for i in ids}

    # Interleaved sample by sample, so that load from other processes hits both alike.
    bare, ours, part = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "part.zip"
        for _ in range(repeats):
            for i in ids:
                bare.append(_ms(_bare_encode, arrays[i]))
                ours.append(_ms(encode_sample, i))
            part.append(_ms(write_part, target, ids) / len(ids))
        info = write_part(target, ids)
        mb_per_sample = info.size / len(ids) / 1e6

        write_part(io.BytesIO(), range(100_000, 100_020))  # warm that scenario's renders

        peaks = []
        for n in (5, 20):
            tracemalloc.start()
            write_part(target, range(100_000, 100_000 + n))
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
            tracemalloc.stop()

    b, o, p = (statistics.median(x) for x in (bare, ours, part))
    print(f"{len(ids)} samples x {repeats} repeats, {mb_per_sample:.2f} MB per sample; medians:")
    print(f"bare encoders (baseline)   {b:7.2f} ms/sample")
    print(f"encode_sample              {o:7.2f} ms/sample   ratio {o / b:.2f}x baseline")
    print(f"write_part (whole part)    {p:7.2f} ms/sample   ratio {p / b:.2f}x baseline")
    print(f"peak traced memory: 5 samples {peaks[0]:.1f} MB, 20 samples {peaks[1]:.1f} MB")


if __name__ == "__main__":
    main()
