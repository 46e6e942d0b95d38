"""Benchmark the training loader, before and after, against its peers (issues 16 and 17).

Run: ``.venv/bin/python benchmarks/bench_loader.py [--quick] [--rounds 3]
[--peers-python PEERS/bin/python] [--before main] [--azurite]``

The same synthetic samples (4 parts x 200, all five fields decoded) go through a PyTorch
loop (batch 16, shuffled, one full epoch) at 0 and 2 workers, in these variants:

- **david-data after**: ``store.loader(16, num_workers=W)`` of this checkout, two epochs
  of one loader (the second epoch's first batch is goal 1's);
- **david-data before**: the same with the ``david_data`` of git revision ``--before``
  (default ``main``), extracted with ``git archive`` into a temporary folder (skipped
  when this checkout's ``david_data`` is that revision's);
- **hand-written**: glob the extracted ``rgb_*.png``, decode PNGs (OpenCV), EXRs
  (OpenEXR) and the camera file per sample under ``DataLoader(shuffle=True)``;
- **MDS** (``mosaicml-streaming``), **LitData** and **WebDataset**, each in its own
  idiomatic loader (``StreamingDataLoader``; ``WebLoader`` over ``.batched(16)``), each
  written here from the same samples, losslessly: every array as it decodes from the
  zip, in the store's dtypes (float16 EXR pixels widened exactly when the store holds
  float32), zstd-compressed where the format offers it (MDS, LitData), ``.npy`` members
  in tar shards for WebDataset. The peers are not dependencies of david-data: they run
  in child processes of the interpreter given by ``--peers-python`` (skipped with a note
  without it), a virtual environment of their own, e.g.::

      python3 -m venv /tmp/peers && /tmp/peers/bin/pip install -c requirements.lock \\
          torch numpy opencv-python-headless OpenEXR mosaicml-streaming litdata webdataset

  (MDS's package imports ``streaming.vision``, which imports torchvision; the PyPI
  torchvision wheel does not load against the CPU torch, so the child stubs those
  unused subpackages out.)

Each variant runs in its own process; the variants of a round run one after another in
a rotated order, and ``--rounds`` rounds (default 3) interleave. Printed: per variant the
medians (and ranges) of samples/s over the epoch (start included), time to the first
batch (from building the loader; for david-data also in the second epoch), write CPU per
sample, bytes relative to the source zips and random reads per second; then one verdict
line per goal of issue 17, each judging the metric it names from per-round ratios; and
the load average beside every round. ``--azurite`` adds ``az://`` rows (Azurite from
``scripts/setup.sh --azurite``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
FIELDS = ("rgb", "alpha", "depth", "normal", "intrinsics")
PEERS = ("mds", "litdata", "webdataset")
LABELS = {
    "after": "david-data after",
    "before": "david-data before",
    "hand": "hand-written",
    "mds": "MDS",
    "litdata": "LitData",
    "webdataset": "WebDataset",
    "az-cold": "after, az:// cold",
    "az-warm": "after, az:// warm",
}


# -- the samples, as the zip holds them ---------------------------------------------------
class ExtractedFiles:
    """The typical Dataset over extracted SynthHuman files (one decode per file)."""

    def __init__(self, root: str, dtypes: dict[str, str] | None = None) -> None:
        self.rgb = sorted(glob.glob(os.path.join(root, "**", "rgb_*.png"), recursive=True))
        self.dtypes = dtypes

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import cv2
        import numpy as np
        import OpenEXR

        path = self.rgb[i]
        folder, name = os.path.split(path)
        sid = name[4:-4]
        rgb = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1].copy()
        alpha = cv2.imread(os.path.join(folder, f"alpha_{sid}.png"), cv2.IMREAD_GRAYSCALE)
        with OpenEXR.File(os.path.join(folder, f"depth_{sid}.exr"), separate_channels=True) as exr:
            (depth,) = [np.asarray(c.pixels) for c in exr.channels().values()]
        with OpenEXR.File(os.path.join(folder, f"normal_{sid}.exr"), separate_channels=True) as exr:
            channels = exr.channels()
            names = ("X", "Y", "Z") if "X" in channels else ("R", "G", "B")
            normal = np.stack([np.asarray(channels[c].pixels) for c in names], axis=-1)
        cam = np.loadtxt(os.path.join(folder, f"cam_{sid}.txt"))
        out = {"rgb": rgb, "alpha": alpha, "depth": depth, "normal": normal, "intrinsics": cam}
        if self.dtypes:  # the store's dtypes (float16 -> float32 is exact)
            out = {k: np.ascontiguousarray(v, dtype=self.dtypes[k]) for k, v in out.items()}
        return {**out, "sample_id": int(sid)}


def _import_peer(name: str) -> Any:
    if name == "mds":
        import types

        for stub in ("streaming.vision", "streaming.multimodal", "streaming.text"):
            sys.modules.setdefault(stub, types.ModuleType(stub))  # torchvision: see the docstring
        import streaming

        return streaming
    if name == "litdata":
        import litdata

        return litdata
    import webdataset

    return webdataset


# -- child modes ----------------------------------------------------------------------------------
def _litdata_sample(item: tuple[str, str, int]) -> dict[str, Any]:
    extracted, dtypes, i = item
    return ExtractedFiles(extracted, json.loads(dtypes))[i]


def write_peer(args: argparse.Namespace) -> dict[str, float]:
    """Write the extracted samples in a peer's format (lossless); returns the count."""
    dtypes = json.loads(args.dtypes)
    source = ExtractedFiles(args.extracted, dtypes)
    out = args.out
    if args.variant == "mds":
        streaming = _import_peer("mds")
        columns = {k: f"ndarray:{dtypes[k]}" for k in FIELDS} | {"sample_id": "int"}
        with streaming.MDSWriter(out=out, columns=columns, compression="zstd") as writer:
            for i in range(len(source)):
                writer.write(source[i])
    elif args.variant == "litdata":
        litdata = _import_peer("litdata")
        litdata.optimize(
            fn=_litdata_sample,
            inputs=[(args.extracted, args.dtypes, i) for i in range(len(source))],
            output_dir=out,
            chunk_bytes="64MB",
            compression="zstd",
            num_workers=1,
        )
    else:
        wds = _import_peer("webdataset")
        os.makedirs(out, exist_ok=True)
        with wds.ShardWriter(os.path.join(out, "shard-%04d.tar"), maxcount=50, verbose=0) as sink:
            for i in range(len(source)):
                sample = source[i]
                sink.write(
                    {"__key__": f"{sample['sample_id']:07d}"}
                    | {f"{k}.npy": sample[k] for k in FIELDS}
                    | {"sample_id.cls": sample["sample_id"]}
                )
    return {"samples": len(source)}


def _wds_fields(sample: dict[str, Any]) -> dict[str, Any]:
    return {k: sample[f"{k}.npy"] for k in FIELDS} | {"sample_id": sample["sample_id.cls"]}


def make_loader(args: argparse.Namespace) -> Any:
    """The variant's idiomatic loader (built inside the timed span)."""
    import torch

    if args.variant == "hand":
        return torch.utils.data.DataLoader(
            ExtractedFiles(args.extracted, json.loads(args.dtypes)),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.workers,
        )
    if args.variant == "mds":
        streaming = _import_peer("mds")
        dataset = streaming.StreamingDataset(
            local=args.data, shuffle=True, batch_size=args.batch_size
        )
        return streaming.StreamingDataLoader(
            dataset, batch_size=args.batch_size, num_workers=args.workers
        )
    if args.variant == "litdata":
        litdata = _import_peer("litdata")
        dataset = litdata.StreamingDataset(input_dir=args.data, shuffle=True)
        return litdata.StreamingDataLoader(
            dataset, batch_size=args.batch_size, num_workers=args.workers
        )
    if args.variant == "webdataset":
        wds = _import_peer("webdataset")
        urls = sorted(glob.glob(os.path.join(args.data, "*.tar")))
        dataset = (
            wds.WebDataset(urls, shardshuffle=len(urls), empty_check=False)
            .shuffle(100)
            .decode()
            .map(_wds_fields)
            .batched(args.batch_size)
        )
        return wds.WebLoader(dataset, batch_size=None, num_workers=args.workers)
    from david_data import open_store

    options = json.loads(args.storage_options) if args.storage_options else None
    store = open_store(args.data, options)
    return store.loader(args.batch_size, num_workers=args.workers, cache_dir=args.cache_dir)


def _touch(batch: dict[str, Any]) -> tuple[float, int]:
    """Touch the data (as a training step would) and count the samples."""
    import numpy as np

    values = [np.asarray(batch[k]) for k in FIELDS]
    checksum = sum(float(v.reshape(v.shape[0], -1)[:, ::4096].astype(float).sum()) for v in values)
    return checksum, len(values[0])


def tree_cpu() -> float:
    """CPU seconds of this process and its children, live (from /proc) or reaped."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def session_share(processes: int, seconds: float = 2.0) -> float:
    """Cores that ``processes`` busy processes of this session get together (on Linux
    with autogroup scheduling, a session's processes share one session's share)."""
    import multiprocessing

    before = os.times()
    procs = [multiprocessing.Process(target=_spin, args=(seconds,)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    after = os.times()
    used = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return used / seconds


def run_epochs(args: argparse.Namespace) -> dict[str, Any]:
    """``--epochs`` epochs of one loader in this process: the seconds to build it (imports
    of the loader's package included, torch's not), then per epoch the time from the start
    of the iteration to its first batch, the seconds, the samples and the CPU seconds of
    the process and its workers."""
    import torch  # noqa: F401  (every variant needs it: not counted)

    start = time.perf_counter()
    loader = make_loader(args)
    build_s = time.perf_counter() - start
    epochs = []
    for epoch in range(args.epochs):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        start, cpu = time.perf_counter(), tree_cpu()
        first = None
        samples = 0
        for batch in loader:
            if first is None:
                first = time.perf_counter()
            samples += _touch(batch)[1]
        end, cpu = time.perf_counter(), tree_cpu() - cpu
        assert first is not None
        epochs.append(
            {"first_s": first - start, "seconds": end - start, "samples": samples, "cpu_s": cpu}
        )
    return {"build_s": build_s, "epochs": epochs}


def run_random(args: argparse.Namespace) -> dict[str, float]:
    """Random single-sample reads per second (every field decoded)."""
    import random

    if args.variant == "after":
        from david_data import open_store

        store = open_store(args.data)
        ids = list(store.sample_ids)
        read = store.sample
    elif args.variant == "hand":
        files = ExtractedFiles(args.extracted, json.loads(args.dtypes))
        ids, read = list(range(len(files))), files.__getitem__
    elif args.variant == "mds":
        streaming = _import_peer("mds")
        dataset = streaming.StreamingDataset(local=args.data, shuffle=False)
        ids, read = list(range(len(dataset))), dataset.__getitem__
    else:
        litdata = _import_peer("litdata")
        dataset = litdata.StreamingDataset(input_dir=args.data)
        ids, read = list(range(len(dataset))), dataset.__getitem__
    rng = random.Random(0)
    picks = [rng.choice(ids) for _ in range(args.reads)]
    read(picks[0])  # opening and indexes: not counted
    start = time.perf_counter()
    for i in picks:
        read(i)
    return {"per_s": len(picks) / (time.perf_counter() - start)}


# -- the parent --------------------------------------------------------------------------
def child(python: str, code: Path | None, mode: str, **options: Any) -> dict[str, Any]:
    """Run this file in ``mode`` in a child process; its JSON result plus its CPU seconds
    (its whole process tree, waited for)."""
    cmd = [python, __file__, "--mode", mode]
    for key, value in options.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(code or ROOT)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise RuntimeError(
            f"{mode} {options.get('variant')}: exit {out.returncode}\n{out.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def old_code(work: Path, rev: str) -> Path | None:
    """The ``david_data`` of git revision ``rev`` in ``work/before``; None when it is what
    this checkout holds (or there is no git)."""
    changed = subprocess.run(
        ["git", "diff", "--quiet", rev, "--", "david_data"], cwd=ROOT, check=False
    )
    if changed.returncode != 1:
        return None
    target = work / "before"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "david_data"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(work: Path, parts: int, per_part: int) -> tuple[Path, Path, dict[str, Any]]:
    """Synthetic zips, extracted and converted; the store's dtypes and the write costs."""
    from david_data.synth import write_parts

    mirror, store, extracted = work / "mirror", work / "store.zarr", work / "extracted"
    zips = write_parts(mirror, [f"SynthHuman_{k:04d}.zip" for k in range(parts)], per_part)
    for part in zips:  # what the official script leaves behind
        with zipfile.ZipFile(part) as archive:
            archive.extractall(extracted / part.stem)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [str(Path(sys.executable).with_name("david-data")), "convert", str(mirror), str(store), "--workers", "1"],
        check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    from david_data import open_store

    layout = open_store(str(store)).layout
    dtypes = {k: str(layout.dtypes[k]) for k in FIELDS}
    info = {
        "zip_bytes": sum(p.stat().st_size for p in zips),
        "samples": parts * per_part,
        "write": {
            "after": {
                "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "bytes": folder_bytes(store),
            }
        },
        "dtypes": dtypes,
    }
    return store, extracted, info


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_azurite(work: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        return None
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work / "azurite"),
         "--skipApiVersionCheck", "--silent", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                return None
            time.sleep(0.2)
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    return proc, connection


def med(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def verdict(goal: str, values: list[float], target: float, *, at_most: bool = False) -> None:
    if not values:
        print(f"  {goal}: not measured")
        return
    m = statistics.median(values)
    ok = m <= target if at_most else m >= target
    sign = "<=" if at_most else ">="
    print(f"  {goal}: median {med(values)}, target {sign} {target:g}: {'MET' if ok else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 parts x 40 samples, 1 round")
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--per-part", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--reads", type=int, default=100, help="random reads per measurement")
    parser.add_argument("--peers-python", help="interpreter with the peers installed")
    parser.add_argument("--before", default="main", help="git revision of the 'before' code")
    parser.add_argument("--azurite", action="store_true", help="add az:// rows (Azurite)")
    parser.add_argument("--variants", help="comma-separated subset of " + ",".join(LABELS))
    parser.add_argument(
        "--all-epochs", type=int, default=1, help="epochs of every non-david-data loader"
    )
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    for hidden in ("--variant", "--data", "--extracted", "--storage-options", "--cache-dir",
                   "--out", "--dtypes"):  # fmt: skip
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        modes = {"epochs": run_epochs, "random": run_random, "write": write_peer}
        print(json.dumps(modes[args.mode](args)))
        return
    if args.quick:
        args.parts, args.per_part, args.rounds, args.reads = 2, 40, 1, 20
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    azurite = None
    try:
        print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        store, extracted, info = build(work, args.parts, args.per_part)
        samples, dtypes = info["samples"], json.dumps(info["dtypes"])
        print(f"set-up: {samples} synthetic samples ({args.parts} parts), extracted and converted; "
              f"store dtypes {info['dtypes']}")  # fmt: skip
        before = old_code(work, args.before)
        if before is None:
            print(f"'before' skipped: david_data is the same as {args.before}'s")
        me = sys.executable
        data: dict[str, Path] = {"after": store, "before": store}
        pythons = {"after": me, "before": me, "hand": me}
        peers = [] if not args.peers_python else list(PEERS)
        if not args.peers_python:
            print("peers skipped: pass --peers-python (see the docstring)")
        for peer in peers:
            out = work / peer
            result = child(args.peers_python, None, "write", variant=peer,
                           extracted=extracted, out=out, dtypes=dtypes)  # fmt: skip
            info["write"][peer] = {"cpu_s": result["cpu_s"], "bytes": folder_bytes(out)}
            data[peer], pythons[peer] = out, args.peers_python
        variants = ["after", *(["before"] if before else []), "hand", *peers]
        if args.variants:
            variants = [v for v in variants if v in args.variants.split(",")]
        runs = [(v, w) for v in variants for w in (0, 2)]
        az: dict[str, Any] = {}
        if args.azurite:
            azurite = start_azurite(work)
            if azurite is None:
                print("Azurite is not installed (bash scripts/setup.sh --azurite): az:// skipped")
            else:
                import fsspec

                fs = fsspec.filesystem("az", connection_string=azurite[1], skip_instance_cache=True)
                fs.mkdir("bench")
                fs.put(str(store), "bench/store", recursive=True)
                az = {"storage_options": json.dumps({"connection_string": azurite[1]})}
        results: dict[tuple[str, int], list[dict[str, Any]]] = {r: [] for r in runs}
        randoms = {v: [] for v in ("after", "hand", "mds", "litdata") if v in variants}
        loads: list[float] = []
        shares: list[tuple[float, float]] = []
        for k in range(args.rounds):
            order = runs[k % len(runs) :] + runs[: k % len(runs)]  # rotated: no fixed slot
            load = os.getloadavg()[0]
            loads.append(load)
            shares.append((session_share(1), session_share(2)))
            t = time.perf_counter()
            for variant, workers in order:
                epochs = (
                    max(2, args.all_epochs) if variant in ("after", "before") else args.all_epochs
                )
                results[(variant, workers)].append(
                    child(
                        pythons[variant],
                        before if variant == "before" else None,
                        "epochs",
                        variant=variant,
                        workers=workers,
                        epochs=epochs,
                        data=data.get(variant),
                        extracted=extracted,
                        dtypes=dtypes,
                        batch_size=args.batch_size,
                    )  # fmt: skip
                )
            for variant in randoms:
                randoms[variant].append(
                    child(
                        pythons[variant],
                        None,
                        "random",
                        variant=variant,
                        data=data.get(variant),
                        extracted=extracted,
                        dtypes=dtypes,
                        reads=args.reads,
                    )["per_s"]  # fmt: skip
                )
            if az:
                cache = work / f"cache-{k}"
                for name in ("az-cold", "az-warm"):
                    results.setdefault((name, 2), []).append(
                        child(
                            me,
                            None,
                            "epochs",
                            variant="after",
                            workers=2,
                            epochs=1,
                            data="az://bench/store",
                            cache_dir=cache,
                            batch_size=args.batch_size,
                            **az,
                        )  # fmt: skip
                    )
            print(f"round {k + 1}/{args.rounds}: load average {load:.1f} -> {os.getloadavg()[0]:.1f}, "
                  f"this session's busy processes get {shares[-1][0]:.2f} cores (1 process), "
                  f"{shares[-1][1]:.2f} (2 together); {time.perf_counter() - t:.0f} s")  # fmt: skip
        report(args, info, results, randoms, loads, shares)
    finally:
        if azurite is not None:
            azurite[0].terminate()
            azurite[0].wait()
        shutil.rmtree(work, ignore_errors=True)


def rate(r: dict[str, Any], epoch: int = 0) -> float:
    e = r["epochs"][epoch]
    return float(e["samples"] / e["seconds"])


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    results: dict[tuple[str, int], list[dict[str, Any]]],
    randoms: dict[str, list[float]],
    loads: list[float],
    shares: list[tuple[float, float]],
) -> None:
    samples = info["samples"]
    print(f"\n{samples} samples, batch {args.batch_size}, {args.rounds} interleaved rounds; "
          f"load average {med(loads)} on {os.cpu_count()} cores; this session's busy processes "
          f"got {med([a for a, _ in shares])} cores (1 process), {med([b for _, b in shares])} "
          "(2 together); medians [ranges]")  # fmt: skip
    print(f"{'variant':<20}{'workers':>8}{'build s':>18}{'epoch samples/s':>24}{'CPU ms/sample':>20}"
          f"{'first batch s':>20}{'2nd epoch samples/s':>24}{'2nd epoch first s':>20}")  # fmt: skip
    for (variant, workers), rs in results.items():
        second = [r for r in rs if len(r["epochs"]) > 1]
        print(
            f"{LABELS[variant]:<20}{workers:>8}{med([r['build_s'] for r in rs]):>18}"
            f"{med([rate(r) for r in rs]):>24}"
            f"{med([1000 * r['epochs'][0]['cpu_s'] / r['epochs'][0]['samples'] for r in rs]):>20}"
            f"{med([r['epochs'][0]['first_s'] for r in rs]):>20}"
            f"{med([rate(r, 1) for r in second]):>24}"
            f"{med([r['epochs'][1]['first_s'] for r in second]):>20}"
        )
    print(f"\n{'variant':<20}{'write CPU ms/sample':>20}{'bytes / zips':>14}{'random reads/s':>24}")
    for variant, w in info["write"].items():
        print(f"{LABELS[variant]:<20}{1000 * w['cpu_s'] / samples:>20.1f}"
              f"{w['bytes'] / info['zip_bytes']:>13.2f}x{med(randoms.get(variant, [])):>24}")  # fmt: skip
    if "hand" in randoms:
        print(f"{LABELS['hand']:<20}{'(source)':>20}{'1.00':>13}x{med(randoms['hand']):>24}")

    def ratios(a: tuple[str, int], b: tuple[str, int], epoch: int = 0) -> list[float]:
        if a not in results or b not in results:
            return []
        return [
            rate(x, epoch) / rate(y, epoch) for x, y in zip(results[a], results[b], strict=True)
        ]

    firsts = [e["first_s"] for r in results[("after", 2)] for e in r["epochs"]]
    print("\nverdicts (issue 17, goal 1; ratios per round, then their median [range]):")
    for peer in ("mds", "litdata"):
        verdict(f"after@2 workers / {LABELS[peer]}@2 workers, epoch samples/s",
                ratios(("after", 2), (peer, 2)), 1.5)  # fmt: skip
    verdict(
        "after@2 workers / after@0 workers, epoch samples/s",
        ratios(("after", 2), ("after", 0)),
        1.3,
    )
    verdict("after@2 workers / after@0 workers, 2nd epoch samples/s",
            ratios(("after", 2), ("after", 0), 1), 1.3)  # fmt: skip
    verdict("after@2 workers, first batch s (epochs 1 and 2, largest of each round)",
            [max(e["first_s"] for e in r["epochs"]) for r in results[("after", 2)]], 1.0, at_most=True)  # fmt: skip
    print(f"    (every first batch: {med(firsts)})")
    if ("before", 2) in results:
        print("for comparison, before (same runs):")
        verdict("before@2 workers / before@0 workers, epoch samples/s",
                ratios(("before", 2), ("before", 0)), 1.3)  # fmt: skip
        for peer in ("mds", "litdata"):
            verdict(f"before@2 workers / {LABELS[peer]}@2 workers, epoch samples/s",
                    ratios(("before", 2), (peer, 2)), 1.5)  # fmt: skip
        print(
            f"  after@2 / before@2 workers, epoch samples/s: {med(ratios(('after', 2), ('before', 2)))}"
        )


if __name__ == "__main__":
    main()
