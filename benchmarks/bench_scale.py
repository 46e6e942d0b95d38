"""Scale by simulation: how metadata, SQL, loader planning and the catalog grow with the data.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--quick] [--rounds R] [--sizes 10000,100000,298008]``

For each sample count N (default 10,000, 100,000 and the full 298,008) it builds, once:

- **a store** with the real layout, shard size (100) and so the real shard count (N / 100
  metadata files, 2,981 at full size) plus the consolidated file, written by the library's
  own metadata writer (:func:`david_data.format.metadata.rows_to_parquet`) and
  :func:`~david_data.format.consolidated.consolidate_metadata`. Every metadata column is
  filled, ``part_sha256`` with a 64-digit hex string as in a real store; the arrays hold no
  chunk (nothing here reads pixels: a store's cost of *opening* does not depend on them).
- **a host** of ceil(N / 5000) parts (60 at full size) whose zips list the real member
  names (5 per sample, 7-digit ids) with empty data, served on loopback by
  :class:`david_data.synth.host.LocalHost` as the Azure host serves the real parts.

Then each round measures every N in a child process of its own (so peak memory is that
child's, and no cache survives between figures), sizes interleaved round after round:

- ``open``: ``open_store(url)`` then ``len(store)`` (reads the consolidated metadata);
- ``query``: one ``GROUP BY scenario`` over ``samples`` (first call: the DuckDB connection);
- ``query2``: the same query again (warm);
- ``loader``: ``store.loader(16, world_size=8, rank=0)`` (the selection, its digest);
- ``epoch``: ``set_epoch(1)`` and planning that epoch's batches (the shuffled order);
- ``state``: ``state_dict()`` after 10 batches, and its size as JSON;
- ``catalog``: the whole catalog from the host, cold (HEAD + ranged reads of every
  central directory, into an empty cache);
- ``catalog2``: the same call with the cache warm (HEADs only);
- ``rss``: the child's peak resident memory.

Each figure is taken twice: wall time (``time.perf_counter``) and the child's CPU time
(``time.process_time``: user + system, every thread of the child, the loopback host's
included). On a shared machine wall time also measures the neighbours (time spent waiting
for a core), so the **verdict judges the CPU time**; wall time is printed beside it, with
the machine's load average before, during and after the rounds. The verdict line also
gives the user and system parts' exponents: system time (mostly the kernel zeroing the
fresh pages a figure touches) swells with the machine's load, user time much less.

Figures are medians over rounds (at least 3, sizes interleaved). Between neighbouring sizes
the table prints each figure's growth exponent, log(figure growth) / log(N growth): 0 is
flat, 1 linear, 2 quadratic. The verdict line per figure judges only that figure's steepest
CPU-time exponent (at most 1.25: "flat or linear"). Exponents of figures under a few
milliseconds are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (10_000, 100_000, 298_008)
FIGURES = ("open", "query", "query2", "loader", "epoch", "state", "catalog", "catalog2")
QUERY = "SELECT scenario, count(*) AS n, avg(fx) FROM samples GROUP BY 1 ORDER BY 1"


# -- building ----------------------------------------------------------------------------------
def build_store(folder: Path, count: int) -> str:
    """A store with ``count`` samples of metadata (no chunks), in the library's layout."""
    import numpy as np
    import pyarrow.parquet as pq

    from david_data import facts
    from david_data.format.consolidated import consolidate_metadata
    from david_data.format.layout import create_store
    from david_data.format.metadata import SCHEMA

    url = str(folder / f"store-{count}")
    dtypes = {"depth": np.dtype("float16"), "normal": np.dtype("float16")}
    layout = create_store(
        url, profile="fast", shard_size=100, dtypes=dtypes, source="bench_scale (simulated)"
    )
    rng = np.random.default_rng(count)
    shas = {p: rng.bytes(32).hex() for p in range(facts.NUM_PARTS)}
    layout.fs.makedirs(layout.metadata_dir, exist_ok=True)
    for start in range(0, count, layout.shard_size):
        ids = np.arange(start, min(start + layout.shard_size, count))
        n = ids.size
        fx = rng.uniform(300, 900, n)
        columns: dict[str, Any] = {
            "sample_id": ids,
            "part": [facts.part_name(int(i) // facts.SAMPLES_PER_PART) for i in ids],
            "scenario": [facts.scenario_of(int(i)) for i in ids],
            "fx": fx,
            "fy": fx,
            "cx": np.full(n, 191.5),
            "cy": np.full(n, 255.5),
            "width": np.full(n, facts.WIDTH, np.int32),
            "height": np.full(n, facts.HEIGHT, np.int32),
            "foreground_fraction": rng.uniform(0.1, 0.6, n),
            "bbox_x_min": rng.integers(0, 100, n, dtype=np.int32),
            "bbox_y_min": rng.integers(0, 100, n, dtype=np.int32),
            "bbox_x_max": rng.integers(280, 384, n, dtype=np.int32),
            "bbox_y_max": rng.integers(400, 512, n, dtype=np.int32),
            "depth_min_cm": rng.uniform(50, 100, n),
            "depth_median_cm": rng.uniform(100, 200, n),
            "depth_max_cm": rng.uniform(200, 400, n),
            "fov_x_deg": rng.uniform(20, 60, n),
            "fov_y_deg": rng.uniform(20, 60, n),
            "part_sha256": [shas[int(i) // facts.SAMPLES_PER_PART] for i in ids],
            "shard": ids // layout.shard_size,
            "status": ["ok"] * n,
            "error": [None] * n,
        }
        import pyarrow as pa

        table = pa.Table.from_pydict(columns, schema=SCHEMA)
        with layout.fs.open(layout.metadata_path(start // layout.shard_size), "wb") as f:
            pq.write_table(table, f, compression="zstd")
    consolidate_metadata(url)
    return url


def build_host(folder: Path, count: int) -> Path:
    """ceil(count / 5000) part zips listing the real member names (empty members)."""
    from david_data import facts

    root = folder / f"host-{count}"
    root.mkdir()
    kinds = (
        "rgb_{:07d}.png",
        "alpha_{:07d}.png",
        "depth_{:07d}.exr",
        "normal_{:07d}.exr",
        "cam_{:07d}.txt",
    )
    for part in range((count + facts.SAMPLES_PER_PART - 1) // facts.SAMPLES_PER_PART):
        first = part * facts.SAMPLES_PER_PART
        last = min(first + facts.SAMPLES_PER_PART, count)
        with zipfile.ZipFile(root / facts.part_name(part), "w", zipfile.ZIP_STORED) as z:
            for sid in range(first, last):
                for kind in kinds:
                    z.writestr(kind.format(sid), b"")
    return root


# -- one child: every figure for one N ----------------------------------------------------------
def child(store_url: str, host_root: str, cache_dir: str) -> dict[str, float]:
    os.environ["DAVID_DATA_CACHE_DIR"] = cache_dir
    out: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        before = resource.getrusage(resource.RUSAGE_SELF)
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        out[name] = time.perf_counter() - start
        out[f"{name} cpu"] = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        out[f"{name} user"] = after.ru_utime - before.ru_utime
        out[f"{name} system"] = after.ru_stime - before.ru_stime
        return value

    from david_data.store import open_store

    store = timed("open", lambda: (s := open_store(store_url), len(s))[0])
    timed("query", lambda: store.query(QUERY))
    timed("query2", lambda: store.query(QUERY))
    try:
        import torch  # noqa: F401

        loader = timed("loader", lambda: store.loader(16, world_size=8, rank=0, shuffle=True))
        timed("epoch", lambda: (loader.set_epoch(1), loader._plan()))
        loader._steps = 10  # as after 10 batches: the state then holds one partial segment
        state = timed("state", loader.state_dict)
        out["state_bytes"] = len(json.dumps(state))
    except ImportError:
        pass

    from david_data.catalog.catalog import load_catalog, open_catalog_source
    from david_data.synth.host import LocalHost

    with LocalHost(host_root) as host:
        source = open_catalog_source(host.base_url)
        parts = sorted(p.name for p in Path(host_root).glob("*.zip"))
        timed("catalog", lambda: load_catalog(source, parts))
        timed("catalog2", lambda: load_catalog(source, parts))
    out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def run_child(store_url: str, host_root: Path, cache_dir: Path) -> dict[str, float]:
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", store_url, str(host_root), str(cache_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the table ----------------------------------------------------------------------------------
def _fmt(name: str, value: float) -> str:
    if name == "rss":
        return f"{value / 2**20:.0f} MB"
    if name == "state_bytes":
        return f"{value:.0f} B"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="sizes 10k and 100k, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument("--sizes", default=None, help="comma-separated sample counts")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    sizes = (
        tuple(int(s) for s in args.sizes.split(","))
        if args.sizes
        else (SIZES[:2] if args.quick else SIZES)
    )
    rounds = args.rounds or 3
    if rounds < 3:
        parser.error("--rounds: give at least 3 (the table prints medians and ranges)")
    before = _load()
    print(f"load average {before}; sizes {sizes}; {rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        built: dict[int, tuple[str, Path]] = {}
        for n in sizes:
            start = time.perf_counter()
            url = build_store(work, n)
            store_s = time.perf_counter() - start
            start = time.perf_counter()
            host = build_host(work, n)
            host_s = time.perf_counter() - start
            built[n] = (url, host)
            print(
                f"built N={n:,}: store {store_s:.1f} s ({n // 100:,} shard files), "
                f"host {host_s:.1f} s ({len(list(host.glob('*.zip')))} parts)"
            )
        results: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
        for r in range(rounds):
            for n in sizes:
                results[n].append(run_child(built[n][0], built[n][1], work / "cache"))
            print(f"round {r + 1}/{rounds} done (load average {_load()})")
    print_table(sizes, results)
    print(f"load average before the rounds {before}, after {_load()} (on {os.cpu_count()} cores)")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(sizes: tuple[int, ...], results: dict[int, list[dict[str, float]]]) -> None:
    """Medians, growth exponents and the range at the largest N; the verdict per figure
    judges its CPU time."""
    first = results[sizes[0]][0]
    names = [
        name for f in (*FIGURES, "state_bytes", "rss") for name in (f, f"{f} cpu") if name in first
    ]
    median = {n: {f: statistics.median(x[f] for x in results[n]) for f in names} for n in sizes}
    width = 14
    steps = list(zip(sizes, sizes[1:], strict=False))
    print()
    print(
        "figure".ljust(13)
        + "".join(f"N={n:,}".rjust(width) for n in sizes)
        + "".join(f"exp {a // 1000}k→{b // 1000}k".rjust(15) for a, b in steps)
        + "   range at largest N"
    )
    worst: dict[str, float] = {}
    for f in names:
        cells = "".join(_fmt(f, median[n][f]).rjust(width) for n in sizes)
        exps = [_exponent(median[a][f], median[b][f], a, b) for a, b in steps]
        worst[f] = max(exps)
        values = [x[f] for x in results[sizes[-1]]]
        spread = f"{_fmt(f, min(values))} – {_fmt(f, max(values))}"
        print(f.ljust(13) + cells + "".join(f"{e:15.2f}" for e in exps) + f"   {spread}")
    print(
        "(FIGURE: wall time; FIGURE cpu: the child's CPU time, all its threads. exp: "
        "log(figure growth) / log(N growth) between neighbouring sizes: 1 = linear, "
        "0 = flat, 2 = quadratic)"
    )
    for f in names:
        if f.endswith(" cpu") or f"{f} cpu" not in worst:
            continue
        steepest = worst[f"{f} cpu"]
        verdict = "flat or linear" if steepest <= 1.25 else "GROWS FASTER THAN LINEAR"
        user, system = (
            max(
                _exponent(
                    statistics.median(x[f"{f} {kind}"] for x in results[a]),
                    statistics.median(x[f"{f} {kind}"] for x in results[b]),
                    a,
                    b,
                )
                for a, b in steps
            )
            for kind in ("user", "system")
        )
        print(
            f"verdict {f}: steepest CPU-time exponent {steepest:.2f}: {verdict} "
            f"(user {user:.2f}, system {system:.2f}; wall time's {worst[f]:.2f}, "
            "neighbours included)"
        )
    for f in ("state_bytes", "rss"):
        if f in worst:
            verdict = "flat or linear" if worst[f] <= 1.25 else "GROWS FASTER THAN LINEAR"
            print(f"verdict {f}: steepest exponent {worst[f]:.2f}: {verdict}")


def _exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    import math

    if small <= 0 or large <= 0:
        return 0.0
    return math.log(large / small) / math.log(n_large / n_small)


if __name__ == "__main__":
    main()
