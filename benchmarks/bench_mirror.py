"""Mirror benchmark: our mirror vs the official way (sequential ``wget --continue``) vs aria2c.

All three download the same synthetic parts from the same local host, which caps every
connection at the same rate (as a remote server does), in the same run. Each tool runs as
a child process; we report the median wall time over repeats, throughput, ratios, CPU
seconds per GB and peak RSS (polled from /proc). Our mirror also verifies every part
(SHA-256, every member's CRC-32, member set) as it downloads and writes a manifest; wget
and aria2c verify nothing. Our mirror runs through the library (``mirror``) in the
child, not the Prefect CLI, so the ~10 s Prefect start-up (a constant) does not blur the
transfer figures; the child's interpreter start-up and imports are in its wall time, and
its own ``mirror`` time (plan, download, verify, manifest) is reported beside it.

    .venv/bin/python benchmarks/bench_mirror.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The parent stays small (no numpy/OpenCV import): Linux carries a parent's peak RSS
# into a forked child's ru_maxrss, which would hide the children's real peaks. Parts
# are generated and served by separate processes.
GENERATE = """
import shutil, sys
from pathlib import Path
from david_data.synth.generator import write_part
root, samples, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
write_part(root / names[0], range(samples))
for name in names[1:]:  # same bytes under each name: valid parts, cheap to make
    shutil.copyfile(root / names[0], root / name)
"""

OURS = """
import sys
from david_data.mirror import MirrorSettings, mirror
report = mirror(MirrorSettings(dest=sys.argv[1], base_url=sys.argv[2], parts=tuple(sys.argv[5:]),
                                   jobs=int(sys.argv[3]), segments=int(sys.argv[4])))
print(report.seconds)
sys.exit(1 if report.failed else 0)
"""


def _peak_rss(root: int) -> int:
    """Largest VmHWM among ``root`` and its descendants (bytes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    peak, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
    return peak


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Run ``cmd``; return (wall s, CPU s, peak RSS bytes, its stdout).

    Peak RSS is polled from /proc (VmHWM is fresh after exec, unlike ru_maxrss, which
    Linux carries over from the parent).
    """
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _peak_rss(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, _children_cpu() - cpu_before, peak, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (< 2 minutes)")
    parser.add_argument("--parts", type=int, default=None, help="number of parts")
    parser.add_argument("--samples", type=int, default=None, help="samples per part")
    parser.add_argument("--rate", type=float, default=None, help="per-connection cap, MB/s")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--segments", type=int, default=4)
    args = parser.parse_args()
    n_parts = args.parts or (3 if args.quick else 4)
    samples = args.samples or (40 if args.quick else 200)
    rate = (args.rate or (8.0 if args.quick else 10.0)) * 1e6
    repeats = args.repeats or 3
    wget, aria2c = shutil.which("wget"), shutil.which("aria2c")
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        served = Path(tmp) / "served"
        served.mkdir()
        names = [f"SynthHuman_{i:04d}.zip" for i in range(n_parts)]
        print(f"generating {n_parts} parts x {samples} samples ...", flush=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-c", GENERATE, str(served), str(samples), *names], check=True, env=env
        )
        total = sum((served / n).stat().st_size for n in names)
        print(
            f"{n_parts} parts, {total / 1e6:.1f} MB; per-connection cap {rate / 1e6:.1f} MB/s; "
            f"{repeats} repeats; ours: --jobs {args.jobs} --segments {args.segments}"
        )
        results: dict[str, list[tuple[float, float, int, str]]] = {
            "ours": [],
            "wget": [],
            "aria2c": [],
        }
        host = subprocess.Popen(
            [sys.executable, "-m", "david_data.synth.host", str(served), "--rate", str(int(rate))],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert host.stdout is not None
            base_url = host.stdout.readline().strip()
            base_url = base_url[base_url.index("http") :].split()[0]
            urls = [base_url.rstrip("/") + "/" + n for n in names]
            for r in range(repeats):
                dest = Path(tmp) / f"ours{r}"
                results["ours"].append(
                    run_child(
                        [
                            sys.executable,
                            "-c",
                            OURS,
                            str(dest),
                            base_url,
                            str(args.jobs),
                            str(args.segments),
                            *names,
                        ],
                        env,
                    )
                )
                for n in names:
                    assert (dest / n).read_bytes() == (served / n).read_bytes()
                shutil.rmtree(dest)
                if wget:
                    dest = Path(tmp) / f"wget{r}"
                    dest.mkdir()
                    script = " && ".join(f"wget --continue -q -P {dest} {u}" for u in urls)
                    results["wget"].append(run_child(["bash", "-c", script]))
                    shutil.rmtree(dest)
                if aria2c:
                    dest = Path(tmp) / f"aria{r}"
                    results["aria2c"].append(
                        run_child(
                            [
                                aria2c,
                                "-q",
                                "-d",
                                str(dest),
                                f"-j{args.jobs}",
                                f"-x{args.segments}",
                                f"-s{args.segments}",
                                "--min-split-size=1M",
                                "--file-allocation=none",
                                "--allow-overwrite=true",
                                *urls,
                            ]
                        )
                    )
                    shutil.rmtree(dest)
                print(f"  repeat {r + 1}/{repeats} done", flush=True)
        finally:
            host.terminate()
            host.wait()
        startup = run_child([sys.executable, "-c", "import david_data.mirror"], env)
    print()
    print(f"{'client':<8}{'median s':>10}{'MB/s':>10}{'CPU s/GB':>10}{'peak RSS MB':>13}")
    medians = {}
    for name, runs in results.items():
        if not runs:
            print(f"{name:<8} (not installed)")
            continue
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        medians[name] = wall
        print(
            f"{name:<8}{wall:>10.2f}{total / wall / 1e6:>10.1f}{cpu / (total / 1e9):>10.2f}{rss / 1e6:>13.1f}"
        )
    ours_cpu = statistics.median(r[1] for r in results["ours"]) - startup[1]
    ours_run = statistics.median(float(r[3].split()[-1]) for r in results["ours"])
    print(
        f"ours, CPU net of interpreter start-up and imports ({startup[1]:.2f} s CPU, "
        f"{startup[0]:.2f} s wall): {ours_cpu / (total / 1e9):.2f} s/GB "
        "(download + SHA-256 + CRC-32 verification)"
    )
    print(
        f"ours, mirror() alone (no interpreter start-up/imports): {ours_run:.2f} s, "
        f"{total / ours_run / 1e6:.1f} MB/s"
    )
    print()
    for other in ("wget", "aria2c"):
        if other in medians:
            print(
                f"ours vs {other}: {medians[other] / medians['ours']:.2f}x faster (median wall "
                f"time); mirror() alone: {medians[other] / ours_run:.2f}x"
            )


if __name__ == "__main__":
    main()
