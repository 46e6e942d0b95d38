"""``david-data mirror`` (the mirror engine, in this process or as a flow run) and
``david-data verify`` (the verify engine, in this process or as a flow run; units on a
Dask cluster with ``--dask-address``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .. import jobs
from ..engine import EXIT_ERROR, EXIT_FAILURES, EXIT_OK
from ._options import add_job_options
from ._run import job_options, run_job

if TYPE_CHECKING:
    from ..mirror import MirrorPlan


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mirror = subparsers.add_parser(
        "mirror",
        help="download SynthHuman parts, verified byte for byte, to a folder or object store",
        description=(
            "Mirror SynthHuman parts to DEST: parallel, resumable (rerun the same command after "
            "an interruption or Ctrl-C), every byte of every part checked (member CRC-32s, each "
            "local header against the central directory, the central directory and end records "
            "read twice from the server, size, Content-MD5 when sent) before it takes its final "
            "name DEST/SynthHuman_NNNN.zip and is recorded, with its SHA-256, in "
            "DEST/manifest.json."
        ),
        epilog=(
            "examples:\n"
            "  david-data mirror /data/synthhuman --parts 0-3,7 --jobs 4\n"
            "  david-data mirror /data/synthhuman --dry-run\n"
            "  david-data mirror az://datasets/synthhuman --parts sample\n"
            "  david-data mirror /data/synthhuman --reverify     # re-check the parts present, fetch no others"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mirror.add_argument(
        "dest",
        metavar="DEST",
        help="local folder or fsspec URL, e.g. /data/synthhuman or az://container/prefix",
    )
    mirror.add_argument(
        "--parts",
        default=None,
        help="parts to mirror: 'all', 'sample', or indices/ranges like '0-3,7' (default: all; "
        "with --reverify, the parts already at DEST)",
    )
    mirror.add_argument(
        "--base-url",
        default=None,
        help="where the parts are served (default: $DAVID_DATA_BASE_URL or the official host)",
    )
    mirror.add_argument("--jobs", type=int, default=4, help="parts downloaded at once (default: 4)")
    mirror.add_argument(
        "--segments", type=int, default=4, help="ranged connections per part (default: 4)"
    )
    mirror.add_argument(
        "--extract",
        action="store_true",
        help="also unpack verified parts into DEST/SynthHuman/ (the official layout)",
    )
    mirror.add_argument(
        "--reverify",
        action="store_true",
        help="re-check every part already at DEST against the manifest before trusting it "
        "(reads them all); a part that fails is fetched again; parts not at DEST are fetched "
        "only when --parts names them",
    )
    mirror.add_argument(
        "--require-ranges",
        action="store_true",
        help="fail a part when the server ignores Range requests, instead of downloading it "
        "in one stream (no resume within the part)",
    )
    mirror.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (parts, bytes to fetch, already present, disk needed) and exit",
    )
    add_job_options(mirror, "DEST", dask=False)
    mirror.set_defaults(func=run_mirror_command)

    verify = subparsers.add_parser(
        "verify",
        help="re-check a mirror or a fetch folder against its manifest (exit 1 on any problem)",
        description=(
            "Re-check every part recorded in DEST/manifest.json: size, SHA-256, every member's "
            "CRC-32 and every local header (or, with --quick, sizes, central directories and "
            "member sets only), then the mirror as a whole (sample ids held by two parts; ids "
            "missing once all 60 parts are there). Reports good, corrupt, missing and "
            "unexpected files, naming the part and member, and records damaged parts in the "
            "manifest so that the next 'david-data mirror' fetches exactly those again. Parts are "
            "checked --jobs at once, or on a Dask cluster; after Ctrl-C the parts not checked are "
            "named 'unchecked' and the exit status is 130.\n\n"
            "A folder 'david-data fetch' wrote into (DEST/fetch-manifest.json) is checked the "
            "same way, offline: every recorded file's size and CRC-32 (--quick: presence and "
            "size), files the manifest does not record named 'unexpected'. Nothing is written: "
            "rerun the same fetch to re-fetch what failed (it checks every file it finds)."
        ),
        epilog="example:\n  david-data verify /data/synthhuman && echo intact",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("dest", metavar="DEST", help="the mirror (or fetch) folder or URL")
    verify.add_argument(
        "--quick",
        action="store_true",
        help="skip the full read: check sizes, central directories and member sets (a fetch "
        "folder: presence and sizes)",
    )
    verify.add_argument(
        "--jobs",
        type=int,
        default=4,
        help="parts (a fetch folder's samples) checked at once (default: 4; ignored with "
        "--dask-address)",
    )
    add_job_options(verify, "DEST", dask=True)
    verify.set_defaults(func=run_verify_command)


def run_mirror_command(args: argparse.Namespace) -> int:
    job = jobs.mirror()
    options = job_options(args, job.options())
    if args.dry_run:  # planning checks DEST, the manifest and the host
        return _print_plan(job.plan(job.settings(**options)))
    return run_job(args, job, options)


def _print_plan(plan: MirrorPlan) -> int:
    print(plan.render())
    if plan.free_bytes is not None and plan.disk_needed > plan.free_bytes:
        print("NOT ENOUGH FREE SPACE: a real run would refuse to start", file=sys.stderr)
        return EXIT_ERROR
    errors = [p.name for p in plan.parts if p.action == "error"]
    if errors:
        print(f"{len(errors)} part(s) cannot be fetched: {', '.join(errors)}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


def run_verify_command(args: argparse.Namespace) -> int:
    job = jobs.verify()
    return run_job(args, job, job_options(args, job.options()))
