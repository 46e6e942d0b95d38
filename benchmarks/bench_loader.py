"""Benchmark the training loader against the hand-written loader over extracted files.

Run: ``.venv/bin/python benchmarks/bench_loader.py [--quick] [--samples N]``

The same synthetic samples (all five fields) go through a 2-worker PyTorch loop:

- **hand-written** (the baseline): what public SynthHuman training code does: glob the
  extracted ``rgb_*.png`` files, and per sample decode the PNGs (OpenCV), the EXRs
  (OpenEXR) and the camera file (``numpy.loadtxt``) in a map-style Dataset under
  ``DataLoader(batch_size=B, shuffle=True, num_workers=2)``;
- **store.loader, local**: ``store.loader(B, num_workers=2)`` over the converted store;
- **store.loader, az:// cold / warm**: the same store uploaded to Azurite (started here),
  read through an empty shard cache, then a second epoch from the warm cache.

Each variant runs in its own process for one epoch. Printed per variant: time to the
first batch (from building the dataset, glob or store open included), samples/s over the
whole epoch and without the first batch, and the peak memory of the process and its
workers together (RSS summed over the tree, sampled every 20 ms), with ratios against
the hand-written loader. Needs ``pip install 'david-data[torch]'``; Azurite from
``scripts/setup.sh --azurite`` (skipped with a note when absent).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
VARIANTS = ("hand-written", "local", "az-cold", "az-warm")


# -- the hand-written baseline ----------------------------------------------------------------
class ExtractedFiles:
    """The typical Dataset over extracted SynthHuman files (one decode per file)."""

    def __init__(self, root: str) -> None:
        self.rgb = sorted(glob.glob(os.path.join(root, "**", "rgb_*.png"), recursive=True))

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
        return {
            "rgb": rgb,
            "alpha": alpha,
            "depth": depth,
            "normal": normal,
            "intrinsics": cam,
            "sample_id": int(sid),
        }


def run_variant(args: argparse.Namespace) -> dict[str, float]:
    """One epoch of one variant in this process; returns its timings."""
    import torch

    start = time.perf_counter()
    if args.variant == "hand-written":
        dataset = ExtractedFiles(args.extracted)
        loader: Any = torch.utils.data.DataLoader(
            dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers
        )
    else:
        from david_data import open_store

        options = json.loads(args.storage_options) if args.storage_options else None
        store = open_store(args.store, options)
        loader = store.loader(args.batch_size, num_workers=args.workers, cache_dir=args.cache_dir)
    first = None
    samples = 0
    checksum = 0.0
    for batch in loader:
        if first is None:
            first = time.perf_counter()
        checksum += float(batch["depth"][:, ::64, ::64].float().mean())  # touch the data
        samples += int(batch["sample_id"].numel())
    end = time.perf_counter()
    assert first is not None
    return {
        "first_batch_s": first - start,
        "seconds": end - start,
        "samples": samples,
        "after_first_s": end - first,
        "batch_size": args.batch_size,
    }


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a variant process; add the peak RSS of its process tree."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"variant {cmd[-1]} failed with exit status {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = peak / 2**20
    return result


# -- set-up ---------------------------------------------------------------------------------------
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


def build(work: Path, samples: int, shard_size: int) -> tuple[Path, Path]:
    from david_data.convert import convert
    from david_data.synth import write_part

    mirror, store, extracted = work / "mirror", work / "store.zarr", work / "extracted"
    mirror.mkdir()
    t = time.perf_counter()
    part = mirror / "SynthHuman_0000.zip"
    write_part(part, range(samples))
    with zipfile.ZipFile(part) as archive:  # what the official script leaves behind
        archive.extractall(extracted / "SynthHuman")
    report = convert(str(mirror), str(store), shard_size=shard_size, workers=2)
    assert report.ok, report.summary()
    print(f"set-up: {samples} synthetic samples, extracted and converted (shards of {shard_size}) "
          f"in {time.perf_counter() - t:.0f} s")  # fmt: skip
    return store, extracted


def report(results: dict[str, dict[str, float]]) -> None:
    base = results["hand-written"]
    base_rate = base["samples"] / base["seconds"]
    print(f"\n{'variant':<26}{'first batch':>12}{'samples/s':>11}{'x base':>8}"
          f"{'w/o 1st':>9}{'x base':>8}{'peak MB':>9}{'x base':>8}")  # fmt: skip
    for name, r in results.items():
        rate = r["samples"] / r["seconds"]
        steady = (
            (r["samples"] - r["batch_size"]) / r["after_first_s"]
            if r["after_first_s"]
            else float("nan")
        )
        base_steady = (base["samples"] - base["batch_size"]) / base["after_first_s"]
        label = {"hand-written": "hand-written (baseline)", "local": "store.loader, local",
                 "az-cold": "store.loader, az:// cold", "az-warm": "store.loader, az:// warm"}[name]  # fmt: skip
        print(
            f"{label:<26}{r['first_batch_s']:>10.2f} s{rate:>11.1f}{rate / base_rate:>7.2f}x"
            f"{steady:>9.1f}{steady / base_steady:>7.2f}x{r['peak_mb']:>9.0f}{r['peak_mb'] / base['peak_mb']:>7.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 samples, shards of 20")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--shard-size", type=int, default=50, help="a divisor of 5000")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    for hidden in ("--store", "--extracted", "--storage-options", "--cache-dir"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    if args.quick:
        args.samples, args.shard_size = 120, 20
    work = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    azurite = None
    try:
        store, extracted = build(work, args.samples, args.shard_size)
        base_cmd = [
            sys.executable,
            __file__,
            "--batch-size",
            str(args.batch_size),
            "--workers",
            str(args.workers),
        ]
        env = dict(os.environ)
        results = {
            "hand-written": measure(
                [*base_cmd, "--extracted", str(extracted), "--variant", "hand-written"], env
            ),
            "local": measure([*base_cmd, "--store", str(store), "--variant", "local"], env),
        }
        azurite = start_azurite(work)
        if azurite is None:
            print("Azurite is not installed (bash scripts/setup.sh --azurite): az:// rows skipped")
        else:
            import fsspec

            fs = fsspec.filesystem("az", connection_string=azurite[1], skip_instance_cache=True)
            fs.mkdir("bench")
            fs.put(str(store), "bench/store", recursive=True)
            az = [*base_cmd, "--store", "az://bench/store", "--cache-dir", str(work / "cache"),
                  "--storage-options", json.dumps({"connection_string": azurite[1]})]  # fmt: skip
            results["az-cold"] = measure([*az, "--variant", "az-cold"], env)
            results["az-warm"] = measure([*az, "--variant", "az-warm"], env)
        print(
            f"{args.samples} samples, batch {args.batch_size}, {args.workers} workers, one epoch each:"
        )
        report(results)
    finally:
        if azurite is not None:
            azurite[0].terminate()
            azurite[0].wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
