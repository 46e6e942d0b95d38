"""Mirror benchmark: our mirror, before and after a change, vs aria2c and a bare ranged client.

Every client downloads the same synthetic parts from the same local host
(``david_data/synth/host.py``), which caps every connection at the same rate, as a remote
server does; all run in the same session, interleaved, and the figures are medians over
the repeats. The table printed at the end holds issue 10's ratios, before and after:

- **link**: bytes ÷ (connections × cap × seconds), ``jobs × segments`` connections (16 by
  default; fewer when there are fewer parts than jobs). For our mirror the seconds are ``mirror()``'s own (plan, download, verify,
  manifest; as the issue measured ``run_mirror``); whole-process figures are printed too.
  The host paces each reply after sending its first chunk (``cap / 20`` bytes) at once,
  so a client that makes more requests gets a little more than the cap: the line
  "credited" counts those chunks as link capacity, so more requests buy nothing.
- **CPU per GB vs aria2c**: user + system CPU of each client process (``wait4``). Ours is
  given for ``mirror()`` alone (its CPU net of interpreter start-up and imports, which
  the child measures itself) and for the whole process. Ours also verifies every byte
  (SHA-256, every member's CRC-32, local headers, the central directory read twice) and
  flushes the data to disk before it takes its final name; aria2c and the bare client
  check and flush nothing.
- **re-fetched after SIGKILL**: a mirror is killed with SIGKILL once the host has served
  half of the bytes, then run again to the end; re-fetched = bytes served by both runs −
  the parts' sizes − the central-directory second reads (by design); divided by the bytes
  served before the kill.

"before" is the code of ``--before`` (a git revision, default the last commit before the
mirror's performance work), extracted with ``git archive`` into a temporary folder and run
the same way. Each child gets a private bytecode cache (``PYTHONPYCACHEPREFIX``, warmed
first), so its start-up is what a user's is. The disk is synced between runs, so no run
pays for another's dirty pages.

    .venv/bin/python benchmarks/bench_mirror.py [--quick] [--wget] [--before REV]

aria2c reads URIs on one command line as mirrors of ONE file, so it is given one URI per
line with ``-i`` (``apt-get install -y aria2``); the bare client is a few lines of
``http.client`` (one thread per connection, one equal range each, no checks), what
Python can do at best.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "08ab91e"
"""The last commit before the mirror's performance work (issue 10)."""

# The parent stays small (no numpy/OpenCV import); parts are generated and served by
# separate processes.
GENERATE = """
import shutil, sys
from pathlib import Path
from david_data.synth.generator import write_part
root, samples, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
write_part(root / names[0], range(samples))
for name in names[1:]:  # same bytes under each name: valid parts, cheap to make
    shutil.copyfile(root / names[0], root / name)
"""

HOST = """
import json, sys, zipfile
from pathlib import Path
from david_data.synth.host import Fault, LocalHost
root, rate = Path(sys.argv[1]), int(sys.argv[2])
first = min(1 << 20, max(4096, rate // 20))  # host.py sends this much of a reply unpaced
tails = {}
for p in root.glob("*.zip"):
    with zipfile.ZipFile(p) as archive:
        tails[p.name] = "bytes=%d-%d" % (archive.start_dir, p.stat().st_size - 1)
with LocalHost(root) as host:
    host.faults.add(Fault.rate_cap(rate), times=None)
    print(host.base_url, flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            host.reset_stats()
        gets = [r for r in host.stats.requests if r.method == "GET"]
        print(json.dumps({
            "bytes": sum(r.bytes_sent for r in gets),
            "gets": len(gets),
            "unpaced": sum(min(first, r.bytes_sent) for r in gets),
            "second_reads": sum(r.bytes_sent for r in gets if r.range == tails.get(r.path)),
        }), flush=True)
"""

OURS = """
import resource, sys, time
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
import david_data
from david_data.mirror import MirrorSettings, mirror
startup = cpu()
report = mirror(MirrorSettings(dest=sys.argv[1], base_url=sys.argv[2], parts=tuple(sys.argv[5:]),
                               jobs=int(sys.argv[3]), segments=int(sys.argv[4])))
print(report.seconds, cpu() - startup, startup, david_data.__file__)
sys.exit(1 if report.failed or report.interrupted else 0)
"""

BREAKDOWN = """
import collections, hashlib, resource, sys, threading, time
from david_data.mirror import MirrorSettings, mirror
from david_data.mirror import part, transfer, zipcheck
try:
    from david_data.mirror import segmented
except ImportError:  # revisions before the rename (mirror/fetch.py)
    from david_data.mirror import fetch as segmented
spent, lock = collections.Counter(), threading.Lock()
def timed(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                spent[label] += time.thread_time() - start
    setattr(owner, name, wrapper)
class Sha256:  # SHA-256 on its own, inside the check
    def __init__(self):
        self.hash = hashlib.sha256()
    def update(self, data):
        start = time.thread_time()
        self.hash.update(data)
        with lock:
            spent["sha256"] += time.thread_time() - start
    def hexdigest(self):
        return self.hash.hexdigest()
class Hashlib:
    sha256, md5 = Sha256, hashlib.md5
zipcheck.hashlib = Hashlib
timed(segmented, "_worker", "connections")
timed(part, "check_download", "check")
if hasattr(transfer.Transfer, "_sync_loop"):
    timed(transfer.Transfer, "_sync_loop", "flush_thread")
usage = resource.getrusage(resource.RUSAGE_SELF)
before = usage.ru_utime + usage.ru_stime
report = mirror(MirrorSettings(dest=sys.argv[1], base_url=sys.argv[2], parts=tuple(sys.argv[5:]),
                               jobs=int(sys.argv[3]), segments=int(sys.argv[4])))
usage = resource.getrusage(resource.RUSAGE_SELF)
spent["check"] -= spent["sha256"]
spent["rest"] = usage.ru_utime + usage.ru_stime - before - sum(spent.values())
print(" ".join(f"{k}={v:.3f}" for k, v in spent.items()))
"""

FLOOR = """
import hashlib, sys, time
from isal.isal_zlib import crc32
spent = 0.0
for path in sys.argv[1:]:  # the same bytes the clients fetch, in memory, in 8 MiB blocks
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            start = time.process_time()
            hashlib.sha256(block).digest()
            crc32(block)
            spent += time.process_time() - start
print(spent)
"""

BARE = """
import http.client, os, sys, threading, urllib.parse
dest, k, urls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def connect(url):
    parts = urllib.parse.urlsplit(url)
    return parts.path, http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
def get(url, fd, start, end):
    path, conn = connect(url)
    conn.request("GET", path, headers={"Range": f"bytes={start}-{end}"})
    reply, view, at = conn.getresponse(), memoryview(bytearray(1 << 20)), start
    while at <= end:
        n = reply.readinto(view[: end - at + 1])
        if not n:
            raise SystemExit("short reply")
        done = 0
        while done < n:
            done += os.pwrite(fd, view[done:n], at + done)
        at += n
threads = []
for url in urls:
    path, conn = connect(url)
    conn.request("HEAD", path)
    size = int(conn.getresponse().getheader("Content-Length"))
    fd = os.open(os.path.join(dest, url.rsplit("/", 1)[1]), os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, size)
    step = -(-size // k)
    threads += [threading.Thread(target=get, args=(url, fd, a, min(a + step, size) - 1))
                for a in range(0, size, step)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


@dataclass
class Run:
    """One client run: wall seconds, CPU seconds, peak RSS bytes, what the host saw."""

    wall: float
    cpu: float
    rss: int
    host: dict[str, int]
    own: tuple[float, float, float] | None = None
    """Ours: mirror() seconds, mirror() CPU, CPU before mirror() (start-up, imports)."""


@dataclass
class Client:
    name: str
    runs: list[Run] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(_value(r, key) for r in self.runs)


def _value(run: Run, key: str) -> float:
    if key in ("wall", "cpu", "rss"):
        return float(getattr(run, key))
    if key in ("own_wall", "own_cpu", "startup"):
        assert run.own is not None
        return run.own[("own_wall", "own_cpu", "startup").index(key)]
    return float(run.host[key])


class Host:
    """The capped host in a child process; ``stats()`` asks it what it served."""

    def __init__(self, served: Path, rate: int, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOST, str(served), str(rate)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()

    def stats(self, reset: bool = False) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("reset\n" if reset else "stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait()


def _run(cmd: list[str], env: dict[str, str], host: Host) -> Run:
    """Run ``cmd`` to the end; its CPU and peak RSS come from ``wait4``."""
    host.stats(reset=True)
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {text[-2000:]}")
    own = None
    if cmd[1:2] == ["-c"] and cmd[2] == OURS:
        *figures, where = text.split()[-4:]
        if not where.startswith(env["PYTHONPATH"]):
            raise SystemExit(f"ran the david_data of {where}, not of {env['PYTHONPATH']}")
        seconds, cpu, startup = (float(x) for x in figures)
        own = (seconds, cpu, startup)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, host.stats(), own)


def _killed_then_resumed(
    cmd: list[str], env: dict[str, str], host: Host, served: Path, names: list[str], total: int
) -> float:
    """Re-fetched bytes ÷ bytes fetched before a SIGKILL at half of ``total``."""
    dest = Path(cmd[3])
    host.stats(reset=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while proc.poll() is None and host.stats()["bytes"] < total // 2:
        time.sleep(0.02)
    if proc.poll() is not None:
        raise SystemExit("the mirror ended before it could be killed half-way")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)  # replies in flight end (the host counts what it sent)
    first = host.stats()
    second = _run(cmd, env, host).host
    _same_files(dest, served, names)
    refetched = first["bytes"] + second["bytes"] - total
    refetched -= first["second_reads"] + second["second_reads"]
    shutil.rmtree(dest)
    return refetched / (first["bytes"] - first["second_reads"])


@contextlib.contextmanager
def _inside(folder: str) -> Iterator[None]:
    """Work in ``folder``: ``python -c`` puts the working folder first on ``sys.path``,
    where a checkout's ``david_data`` would shadow the version under test."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _same_files(dest: Path, served: Path, names: list[str]) -> None:
    """Every part arrived whole (compared in small blocks: the parent stays small, so
    its peak RSS, which Linux hands to each child it forks, hides nobody's)."""
    for name in names:
        with open(dest / name, "rb") as a, open(served / name, "rb") as b:
            while block := b.read(1 << 20):
                if a.read(1 << 20) != block:
                    raise SystemExit(f"{dest / name} differs from the served file")
            if a.read(1):
                raise SystemExit(f"{dest / name} is longer than the served file")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (~1 minute)")
    parser.add_argument("--parts", type=int, default=None, help="number of parts (default 4)")
    parser.add_argument("--samples", type=int, default=None, help="samples per part (200)")
    parser.add_argument("--rate", type=float, default=None, help="per-connection cap, MB/s")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 3)")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--before", default=BEFORE, help=f"git revision of 'before' ({BEFORE})")
    parser.add_argument("--wget", action="store_true", help="also time sequential wget -c")
    args = parser.parse_args()
    n_parts = args.parts or (3 if args.quick else 4)
    samples = args.samples or (40 if args.quick else 200)
    rate = int((args.rate or 10.0) * 1e6)
    repeats = args.repeats or (1 if args.quick else 3)
    connections = min(n_parts, args.jobs) * args.segments
    aria2c, wget = shutil.which("aria2c"), shutil.which("wget") if args.wget else None
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp_name, _inside(tmp_name):
        tmp = Path(tmp_name)  # the children's working folder: no checkout on their path
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        env = {**base_env, "PYTHONPATH": str(ROOT)}
        before_root = tmp / "before"
        before_root.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "david_data"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(before_root)], input=archive.stdout, check=True)
        revision = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.before],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        versions = {"after": env, "before": {**base_env, "PYTHONPATH": str(before_root)}}
        for version_env in versions.values():  # warm each version's bytecode cache
            subprocess.run([sys.executable, "-c", "import david_data.mirror"], env=version_env)

        served = tmp / "served"
        served.mkdir()
        names = [f"SynthHuman_{i:04d}.zip" for i in range(n_parts)]
        print(f"generating {n_parts} parts x {samples} samples ...", flush=True)
        subprocess.run(
            [sys.executable, "-c", GENERATE, str(served), str(samples), *names], check=True, env=env
        )
        total = sum((served / n).stat().st_size for n in names)
        print(
            f"{n_parts} parts, {total / 1e6:.1f} MB; {connections} connections capped at "
            f"{rate / 1e6:.1f} MB/s each ({connections * rate / 1e6:.0f} MB/s); {repeats} "
            f"repeats; ours: --jobs {args.jobs} --segments {args.segments}; before = {revision}",
            flush=True,
        )
        clients = {name: Client(name) for name in ("after", "before", "aria2c", "bare", "wget")}
        refetch: dict[str, list[float]] = {"after": [], "before": []}
        floors: list[float] = []
        """SHA-256 + CRC-32 CPU seconds over the parts' bytes in memory, one per round."""
        loads: list[float] = []
        host = Host(served, rate, env)
        try:
            urls = [host.base_url.rstrip("/") + "/" + n for n in names]
            uris = tmp / "uris.txt"
            uris.write_text("".join(u + "\n" for u in urls))
            dest = tmp / "dest"
            for r in range(repeats):
                for version, version_env in versions.items():
                    ours = [sys.executable, "-c", OURS, str(dest), host.base_url,
                            str(args.jobs), str(args.segments), *names]  # fmt: skip
                    os.sync()
                    clients[version].runs.append(_run(ours, version_env, host))
                    _same_files(dest, served, names)
                    shutil.rmtree(dest)
                    os.sync()
                    refetch[version].append(
                        _killed_then_resumed(ours, version_env, host, served, names, total)
                    )
                others = {
                    "aria2c": [aria2c, "-q", "-d", str(dest), f"-j{args.jobs}",
                               f"-x{args.segments}", f"-s{args.segments}",
                               "--min-split-size=1M", "--file-allocation=none",
                               "--allow-overwrite=true", "-i", str(uris)] if aria2c else None,
                    "bare": [sys.executable, "-c", BARE, str(dest), str(args.segments), *urls],
                    "wget": ["bash", "-c", " && ".join(
                        f"wget --continue -q -P {dest} {u}" for u in urls)] if wget else None,
                }  # fmt: skip
                for name, cmd in others.items():
                    if cmd is None:
                        continue
                    dest.mkdir()
                    os.sync()
                    clients[name].runs.append(_run(cmd, env, host))  # type: ignore[arg-type]
                    _same_files(dest, served, names)
                    shutil.rmtree(dest)
                floor = subprocess.run(
                    [sys.executable, "-c", FLOOR, *(str(served / n) for n in names)],
                    capture_output=True, text=True, check=True, env=env,
                )  # fmt: skip
                floors.append(float(floor.stdout.split()[-1]))
                loads.append(os.getloadavg()[0])
                print(f"  repeat {r + 1}/{repeats} done (load average {loads[-1]:.2f}, "
                      f"{os.cpu_count()} CPUs)", flush=True)  # fmt: skip
            breakdown = {}
            for version, version_env in versions.items():
                os.sync()
                cmd = [sys.executable, "-c", BREAKDOWN, str(dest), host.base_url,
                       str(args.jobs), str(args.segments), *names]  # fmt: skip
                out = subprocess.run(cmd, env=version_env, capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"the breakdown run failed: {out.stderr[-2000:]}")
                last = out.stdout.strip().splitlines()[-1]
                breakdown[version] = {k: float(v) for k, v in (f.split("=") for f in last.split())}
                shutil.rmtree(dest)
        finally:
            host.close()
    _report(clients, refetch, total, rate, connections, revision)
    _cpu_goal(clients, floors, loads, total, revision)
    print("\nwhere mirror()'s CPU goes, CPU s/GB (one more run of each; thread CPU time):")
    for version, spent in breakdown.items():
        parts = ", ".join(f"{k} {v / (total / 1e9):.2f}" for k, v in spent.items())
        print(f"  {version:<7}{parts}")
    print(
        "  connections: socket reads, writes at their offsets, progress records; check: "
        "CRC-32s, zip structure, reading the file as it lands (SHA-256 apart); flush_thread: "
        "fdatasync; rest: plan, HEADs, the last flush, manifest"
    )


def _report(
    clients: dict[str, Client],
    refetch: dict[str, list[float]],
    total: int,
    rate: int,
    connections: int,
    revision: str,
) -> None:
    link = connections * rate
    gb = total / 1e9
    print()
    print(
        f"{'client':<8}{'wall s':>8}{'link':>7}{'credited':>10}{'CPU s/GB':>10}"
        f"{'GETs':>6}{'peak RSS MB':>13}   (medians; whole process)"
    )
    for client in clients.values():
        if not client.runs:
            continue
        wall = client.median("wall")
        credited = total / (link * wall + client.median("unpaced"))
        print(
            f"{client.name:<8}{wall:>8.2f}{total / (link * wall):>7.3f}{credited:>10.3f}"
            f"{client.median('cpu') / gb:>10.2f}{client.median('gets'):>6.0f}"
            f"{max(r.rss for r in client.runs) / 1e6:>13.1f}"
        )
    print()
    print("ours, mirror() alone (no interpreter start-up and imports):")
    for name in ("before", "after"):
        c = clients[name]
        print(
            f"  {name:<7}{c.median('own_wall'):.2f} s, {c.median('own_cpu') / gb:.2f} CPU s/GB "
            f"(start-up and imports {c.median('startup'):.2f} CPU s), "
            f"re-fetched after SIGKILL {', '.join(f'{x:.3f}' for x in refetch[name])}"
        )
    aria = clients["aria2c"].median("cpu") / gb if clients["aria2c"].runs else None
    bare = clients["bare"]

    def row(name: str) -> list[str]:
        c = clients[name]
        own = c.median("own_wall")
        cells = [
            f"{total / (link * own):.3f}",
            f"{total / (link * own + c.median('unpaced')):.3f}",
            f"{total / (link * c.median('wall')):.3f}",
        ]
        for cpu in (c.median("own_cpu"), c.median("cpu")):
            cells.append(f"{cpu / gb / aria:.2f}" if aria else "n/a")
        cells.append(f"{statistics.median(refetch[name]):.3f}")
        return cells

    before, after = row("before"), row("after")
    measures = [
        ("mirror vs the capped link, mirror() time", "≥ 0.95"),
        ("  the same, first chunks credited", "≥ 0.95"),
        ("  the same, whole process", ""),
        ("client CPU per GB vs aria2c, mirror() alone", "≤ 1.0"),
        ("  the same, whole process", ""),
        ("bytes re-fetched after SIGKILL ÷ before", "≤ 0.03"),
    ]
    print()
    print(f"| measure (same run, medians; before = {revision}) | before | after | goal |")
    print("| --- | ---: | ---: | --- |")
    for (label, goal), b, a in zip(measures, before, after, strict=True):
        print(f"| {label} | {b} | {a} | {goal} |")
    if bare.runs:
        print(
            f"\nreference: the bare Python client reaches {total / (link * bare.median('wall')):.3f} "
            f"of the link ({total / (link * bare.median('wall') + bare.median('unpaced')):.3f} "
            f"credited), whole process; aria2c {aria:.2f} CPU s/GB"
            if aria
            else ""
        )


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _cpu_goal(
    clients: dict[str, Client], floors: list[float], loads: list[float], total: int, revision: str
) -> None:
    """Issue 17 goal 7: our whole process's CPU per GB minus the hashing floor, against
    aria2c's whole process, per round (same round's floor and aria2c), medians and ranges."""
    gb = total / 1e9
    aria = clients["aria2c"]
    print(f"\nmirror CPU (issue 17 goal 7), whole processes (wait4 user+sys), {len(floors)} "
          f"interleaved rounds, median (range); load average {_spread(loads)} on "
          f"{os.cpu_count()} CPUs:")  # fmt: skip
    print(
        f"  hashing floor (SHA-256 + CRC-32 in memory, same bytes): {_spread([f / gb for f in floors])} CPU s/GB"
    )
    if not aria.runs:
        print("  aria2c not installed (apt-get install -y aria2): no ratio, no verdict")
        return
    print(f"  aria2c whole process: {_spread([r.cpu / gb for r in aria.runs])} CPU s/GB")
    ratios = {}
    for name in ("before", "after"):
        runs = clients[name].runs
        whole = [r.cpu / gb for r in runs]
        ratios[name] = [
            (r.cpu - f) / a.cpu for r, f, a in zip(runs, floors, aria.runs, strict=True)
        ]
        print(f"  {name:<7}whole process {_spread(whole)} CPU s/GB; minus the floor "
              f"{_spread([w - f / gb for w, f in zip(whole, floors, strict=True)])}; "
              f"÷ aria2c {_spread(ratios[name])}")  # fmt: skip
        startup = [r.own[2] / gb for r in runs if r.own is not None]
        print(f"         of it interpreter start-up and imports (before mirror() runs) "
              f"{_spread(startup)} CPU s/GB")  # fmt: skip
    for name in ("before", "after"):
        median = statistics.median(ratios[name])
        print(f"verdict, goal 7 ({name}{' = ' + revision if name == 'before' else ''}): "
              f"(whole-process CPU per GB - hashing floor) ÷ aria2c's whole-process CPU per GB "
              f"= {median:.2f}, goal ≤ 1.3: {'MET' if median <= 1.3 else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
