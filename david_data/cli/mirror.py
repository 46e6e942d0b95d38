"""``david-data mirror`` (a Prefect flow) and ``david-data verify`` (library only)."""

from __future__ import annotations

import argparse
import sys

from .. import settings
from ..facts import parse_parts
from ..fsutil import parse_storage_options
from ._options import add_no_progress, add_storage_option

EXIT_OK, EXIT_FAILURES, EXIT_ERROR = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mirror = subparsers.add_parser(
        "mirror",
        help="download SynthHuman parts, verified byte for byte, to a folder or object store",
        description=(
            "Mirror SynthHuman parts to DEST: parallel, resumable (rerun the same command after "
            "an interruption), every part verified (size, Content-MD5 when sent, SHA-256, zip "
            "central directory, every member's CRC-32, member set) before it takes its final "
            "name DEST/SynthHuman_NNNN.zip, and recorded in DEST/manifest.json."
        ),
    )
    mirror.add_argument(
        "dest",
        metavar="DEST",
        help="local folder or fsspec URL, e.g. /data/synthhuman or az://container/prefix",
    )
    mirror.add_argument(
        "--parts",
        default="all",
        help="parts to mirror: 'all', 'sample', or indices/ranges like '0-3,7' (default: all)",
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
        "--dry-run",
        action="store_true",
        help="print the plan (parts, bytes to fetch, already present, disk needed) and exit",
    )
    add_no_progress(mirror)
    add_storage_option(mirror, "DEST")
    mirror.set_defaults(func=run_mirror_command)

    verify = subparsers.add_parser(
        "verify",
        help="re-check a mirror against its manifest (exit 1 on any problem)",
        description=(
            "Re-check every part recorded in DEST/manifest.json: size, SHA-256 and every member's "
            "CRC-32 (or, with --quick, sizes, central directories and member sets only). Reports "
            "good, corrupt, missing and unexpected files, naming the part and member."
        ),
    )
    verify.add_argument("dest", metavar="DEST", help="the mirror folder or URL")
    verify.add_argument(
        "--quick",
        action="store_true",
        help="skip the full read: check sizes, central directories and member sets",
    )
    add_storage_option(verify, "DEST")
    verify.set_defaults(func=run_verify_command)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..mirror import MirrorSettings

    return MirrorSettings(
        dest=args.dest,
        parts=tuple(parse_parts(args.parts)),
        base_url=args.base_url or settings.data_base_url(),
        storage_options=parse_storage_options(args.storage_option),
        jobs=args.jobs,
        segments=args.segments,
        extract=args.extract,
    )


def run_mirror_command(args: argparse.Namespace) -> int:
    mirror_settings = _settings(args)
    if args.dry_run:
        from ..mirror import plan_mirror

        plan = plan_mirror(mirror_settings)
        print(plan.render())
        if plan.free_bytes is not None and plan.disk_needed > plan.free_bytes:
            print("NOT ENOUGH FREE SPACE: a real run would refuse to start", file=sys.stderr)
            return EXIT_ERROR
        return EXIT_OK
    from ._prefect import prepare_prefect

    prepare_prefect()
    from prefect.types import SecretDict

    from flows.mirror import mirror_flow

    report = mirror_flow(
        dest=args.dest,
        parts=args.parts,
        base_url=mirror_settings.base_url,
        jobs=args.jobs,
        segments=args.segments,
        extract=args.extract,
        storage_options=SecretDict(mirror_settings.storage_options)
        if mirror_settings.storage_options
        else None,
        progress=not args.no_progress,
    )
    print(report.summary())
    return EXIT_FAILURES if report.failed else EXIT_OK


def run_verify_command(args: argparse.Namespace) -> int:
    from ..mirror import verify_mirror

    report = verify_mirror(args.dest, parse_storage_options(args.storage_option), quick=args.quick)
    print(report.render())
    return EXIT_OK if report.ok else EXIT_FAILURES
