"""``david-data convert`` and ``david-data verify-store``: in this process by default, a
flow run with ``--prefect`` (see ``_run.py``), units on a Dask cluster with
``--dask-address``."""

from __future__ import annotations

import argparse
import os

from .. import jobs
from ._options import add_job_options
from ._run import drawn_seed, job_options, plan_or_run, run_job


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    convert = subparsers.add_parser(
        "convert",
        help="convert parts (mirrored, or straight from the host) into a sharded Zarr v3 + Parquet store",
        description=(
            "Convert SynthHuman parts (a mirror folder of zips, one zip, or an extracted SynthHuman/ "
            "folder, local or any fsspec URL; or the data host's http(s) base URL, read by verified "
            "ranged requests with no local copy) into STORE: Zarr v3 arrays rgb, alpha, depth, normal, "
            "intrinsics indexed by sample id (one chunk per sample, shards of --shard-size samples), "
            "plus Parquet metadata per shard, written last as its commit marker. Lossless: depth and "
            "normal keep the EXRs' pixel type (float16 parts join a float32 store exactly). "
            "Resumable: rerun the same command after an interruption; committed shards are skipped, "
            "and shards of a part that changed since they were written are converted again. STORE "
            "must not exist yet, be an empty folder or a david-data store, outside SRC. Samples or "
            "parts that cannot be read are recorded and reported by name, the rest converts, and "
            "the run exits 1. --where, --ids and --limit/--seed convert only some samples (the "
            "store is then sparse: its metadata rows are exactly those samples). Runs in this "
            "process (no Prefect) unless --prefect or a configured Prefect server asks for a flow run."
        ),
    )
    convert.add_argument(
        "source_url",
        metavar="SRC",
        help="mirror folder, part zip, extracted SynthHuman/ folder, or the data host's "
        "http(s) base URL (e.g. https://.../iccv-2025/data/)",
    )
    convert.add_argument(
        "store_url", metavar="STORE", help="store path or fsspec URL (e.g. az://container/store)"
    )
    convert.add_argument(
        "--parts",
        default=None,
        help="parts to convert: 'all', 'sample', or '0-3,7' (default: the parts holding --ids, "
        "else all parts in SRC; on a host, its 60 numbered parts)",
    )
    convert.add_argument(
        "--where",
        default=None,
        metavar="SQL_PREDICATE",
        help="convert only the samples this condition on the catalog's 'samples' view keeps "
        "(sample_id, part, scenario, bytes, members, complete), e.g. \"scenario = 'face'\"",
    )
    convert.add_argument(
        "--ids", default=None, metavar="SPEC", help="convert only these ids, e.g. 0-999,120000"
    )
    convert.add_argument(
        "--limit",
        type=int,
        default=None,
        help="convert this many of the selected samples, drawn at random",
    )
    convert.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of --limit: the same seed, the same samples (default 0)",
    )
    convert.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="processes converting shards (default: CPUs, at most 4; ignored with --dask-address)",
    )
    convert.add_argument(
        "--profile",
        choices=("fast", "compact"),
        default=None,
        help="codecs of a new store: 'fast' (Blosc-LZ4-HC, fastest reads, portable, default) or "
        "'compact' (lossless image codecs, ~1.5-2x smaller, slow random reads: an archive, needs "
        "david_data to read); fixed once the store exists",
    )
    convert.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="samples per shard of a new store, a divisor of 5000 (default 100; fixed once the store exists)",
    )
    convert.add_argument(
        "--retry-errors",
        action="store_true",
        help="convert again the committed shards holding samples recorded with status 'error'",
    )
    convert.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (shards to write, already committed, written again) and exit",
    )
    add_job_options(convert, "STORE and SRC", dask=True)
    convert.set_defaults(func=run_convert_command)

    verify = subparsers.add_parser(
        "verify-store",
        help="compare a store with its source sample by sample (exit 1 on differences)",
        description=(
            "Decode samples from SRC afresh and compare every array bit for bit and every metadata "
            "value with STORE. A sparse store (converted with --where/--ids/--limit) is checked on "
            "the samples it holds; SRC may be the data host's base URL (only the parts holding "
            "the checked samples are read). Every sample is checked or named as not checked "
            "(its part is not in SRC, the run was interrupted); exit 1 on any difference or "
            "sample not checked, 130 when interrupted."
        ),
    )
    verify.add_argument("store_url", metavar="STORE", help="store path or URL")
    verify.add_argument(
        "--against",
        dest="source_url",
        required=True,
        metavar="SRC",
        help="the source the store was converted from",
    )
    verify.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="K",
        help="check K random samples (default: all)",
    )
    verify.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    verify.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="processes checking samples (default: CPUs, at most 4; ignored with --dask-address)",
    )
    add_job_options(verify, "STORE and SRC", dask=True)
    verify.set_defaults(func=run_verify_store_command)


def run_convert_command(args: argparse.Namespace) -> int:
    job = jobs.convert()
    return plan_or_run(args, job, job_options(args, job.options(), seed=drawn_seed(args)))


def run_verify_store_command(args: argparse.Namespace) -> int:
    job = jobs.verify_store()
    return run_job(args, job, job_options(args, job.options()))
