"""Fetch benchmark: a random 2 % of the samples of 4 parts, fetched sample by sample,
against mirroring the parts that hold them; and the same samples converted into a store
straight from the host (``david-data convert URL STORE --ids ...``) against mirror, then
convert.

Both run against the same local host, which caps every connection at the same rate (as
a remote server does), from a cold start (empty catalog cache, empty destination). The
fetch's and the remote conversion's figures include building the catalog (a HEAD and
one or two ranged reads per part, cold). Reported: bytes the server sent and wall time
for each, and both ratios; the two stores are checked equal.

    .venv/bin/python benchmarks/bench_fetch.py [--quick] [--samples N] [--rate MB/s]

With real parts (5,000 samples, ~5.5-8.75 GB each) the byte ratio is about the sample
share plus the central directories (~2.5 MB a part); the synthetic parts here hold far
fewer samples, so the fixed per-part costs weigh more. The same holds for the
conversions: with a few samples their wall time is mostly fixed costs (worker processes
starting, the cold catalog), while mirroring a few hundred MB over loopback is quick; the
byte ratio is what carries over to real parts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (about a minute)")
    parser.add_argument("--samples", type=int, default=None, help="samples per part")
    parser.add_argument("--share", type=float, default=0.02, help="share of samples fetched")
    parser.add_argument("--rate", type=float, default=20.0, help="per-connection cap, MB/s")
    parser.add_argument("--jobs", type=int, default=8, help="fetch: requests in flight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="convert: processes")
    args = parser.parse_args()
    per_part = args.samples or (25 if args.quick else 100)

    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        work = Path(tmp)
        os.environ["DAVID_DATA_CACHE_DIR"] = str(work / "cache")  # a cold catalog cache
        from david_data import facts
        from david_data.catalog.fetch import run_fetch
        from david_data.catalog.plan import FetchSettings, plan_fetch
        from david_data.catalog.select import Selection
        from david_data.engine import make_executor
        from david_data.mirror.plan import MirrorSettings, human_bytes
        from david_data.mirror.run import mirror
        from david_data.synth.generator import write_part
        from david_data.synth.host import Fault, LocalHost

        served = work / "served"
        served.mkdir()
        names = [facts.part_name(i) for i in (3, 21, 40, 57)]  # one per scenario and more
        started = time.monotonic()
        for name in names:
            index = facts.part_index(name) or 0
            write_part(served / name, range(index * 5000, index * 5000 + per_part))
        total = per_part * len(names)
        limit = max(1, round(total * args.share))
        print(
            f"{len(names)} parts of {per_part} samples ({human_bytes(sum((served / n).stat().st_size for n in names))}) "
            f"made in {time.monotonic() - started:.0f}s; host capped at {args.rate:g} MB/s per connection"
        )

        with LocalHost(served) as host:
            host.faults.add(Fault.rate_cap(int(args.rate * 1e6)), times=None)

            started = time.monotonic()
            plan = plan_fetch(
                FetchSettings(
                    dest=str(work / "fetched"),
                    base_url=host.base_url,
                    parts=tuple(names),
                    selection=Selection(limit=limit, seed=args.seed),
                    jobs=args.jobs,
                )
            )
            plan_s = time.monotonic() - started
            with make_executor("threads", args.jobs) as executor:
                report = run_fetch(plan, executor)
            fetch_s = time.monotonic() - started
            fetch_bytes = host.stats.total_bytes
            fetch_requests = len(host.stats.requests)
            assert report.failure_count == 0 and report.complete == limit, report.summary()
            holding = sorted({s.part for s in plan.samples})

            host.reset_stats()
            started = time.monotonic()
            mirrored = mirror(
                MirrorSettings(
                    dest=str(work / "mirror"), parts=tuple(holding), base_url=host.base_url
                )
            )
            mirror_s = time.monotonic() - started
            mirror_bytes = host.stats.total_bytes
            assert not mirrored.failed, mirrored.summary()

            # The same samples into a store: straight from the host, or from the mirror.
            ids = ",".join(str(s.sample_id) for s in plan.samples)
            os.environ["DAVID_DATA_CACHE_DIR"] = str(work / "cache-convert")  # cold again
            host.reset_stats()
            started = time.monotonic()
            remote = _convert(host.base_url, work / "remote.zarr", ids, args.workers)
            remote_s = time.monotonic() - started
            remote_bytes = host.stats.total_bytes
            started = time.monotonic()
            local = _convert(str(work / "mirror"), work / "local.zarr", ids, args.workers)
            local_s = time.monotonic() - started
            assert remote.samples_ok == local.samples_ok == limit, remote.summary()
            _check_same_arrays(work / "remote.zarr", work / "local.zarr", ids)

    print(
        f"\nfetch {limit} of {total} samples ({args.share:.0%}, seed {args.seed}) vs mirror the "
        f"{len(holding)} part(s) holding them\n"
    )
    print(f"{'':<10}{'bytes served':>14}{'wall s':>9}{'requests':>10}")
    print(f"{'fetch':<10}{human_bytes(fetch_bytes):>14}{fetch_s:>9.2f}{fetch_requests:>10}")
    print(f"{'  catalog':<10}{'':>14}{plan_s:>9.2f}{'':>10}   (cold: HEAD + ranged reads per part)")
    print(f"{'mirror':<10}{human_bytes(mirror_bytes):>14}{mirror_s:>9.2f}{'':>10}")
    print(
        f"\nratios (mirror / fetch): bytes {mirror_bytes / fetch_bytes:.1f}x, "
        f"time {mirror_s / fetch_s:.1f}x"
    )
    print(f"\nconvert the same {limit} samples into a store ({args.workers} worker processes)\n")
    print(f"{'':<24}{'bytes served':>14}{'wall s':>9}")
    print(f"{'straight from the host':<24}{human_bytes(remote_bytes):>14}{remote_s:>9.2f}")
    print(
        f"{'mirror, then convert':<24}{human_bytes(mirror_bytes):>14}{mirror_s + local_s:>9.2f}"
        f"   (mirror {mirror_s:.2f} + convert {local_s:.2f})"
    )
    print(
        f"\nratios (mirror-then-convert / from the host): bytes {mirror_bytes / remote_bytes:.1f}x, "
        f"time {(mirror_s + local_s) / remote_s:.1f}x"
    )


def _convert(src: str, out: Path, ids: str, workers: int):  # type: ignore[no-untyped-def]
    from david_data.convert import convert_settings, plan_convert, run_convert
    from david_data.engine import make_executor

    plan = plan_convert(convert_settings(src, str(out), ids=ids, workers=workers))
    with make_executor("processes", workers) as executor:
        report = run_convert(plan, executor)
    assert report.ok, report.summary()
    return report


def _check_same_arrays(a: Path, b: Path, ids: str) -> None:
    """Both stores hold the same samples, every array bit for bit."""
    import numpy as np

    from david_data.store import open_store

    first, second = open_store(str(a)), open_store(str(b))
    for sid in (int(i) for i in ids.split(",")):
        x, y = first.sample(sid), second.sample(sid)
        assert all(np.array_equal(x[k], y[k]) for k in ("rgb", "alpha", "depth", "normal"))


if __name__ == "__main__":
    main()
