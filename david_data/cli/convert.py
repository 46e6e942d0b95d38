"""``david-data convert`` (a Prefect flow) and the quick commands ``verify-store``,
``query`` and ``show`` (library only: no Prefect import)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ConfigError
from ..facts import parse_parts
from ..fsutil import parse_storage_options
from ._options import add_no_progress, add_storage_option

EXIT_OK, EXIT_FAILURES, EXIT_ERROR = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    convert = subparsers.add_parser(
        "convert",
        help="convert mirrored parts into a sharded Zarr v3 + Parquet store",
        description=(
            "Convert SynthHuman parts (a mirror folder of zips, one zip, or an extracted SynthHuman/ "
            "folder; local or any fsspec URL) into STORE: Zarr v3 arrays rgb, alpha, depth, normal, "
            "intrinsics indexed by sample id (one chunk per sample, shards of --shard-size samples), "
            "plus Parquet metadata per shard, written last as its commit marker. Lossless. Resumable: "
            "rerun the same command after an interruption; committed shards are skipped. Samples "
            "that cannot be read are recorded with status 'error' and the run exits 1."
        ),
    )
    convert.add_argument(
        "src", metavar="SRC", help="mirror folder, part zip or extracted SynthHuman/ folder"
    )
    convert.add_argument(
        "store", metavar="STORE", help="store path or fsspec URL (e.g. az://container/store)"
    )
    convert.add_argument(
        "--parts",
        default=None,
        help="parts to convert: 'all', 'sample', or '0-3,7' (default: all parts in SRC)",
    )
    convert.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="processes converting shards (default: CPUs, at most 4)",
    )
    convert.add_argument(
        "--profile",
        choices=("fast", "compact"),
        default="fast",
        help="codecs: 'fast' (zstd-1, fastest reads, default) or 'compact' (lossless image codecs, ~1.5-2x smaller)",
    )
    convert.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="samples per shard, a divisor of 5000 (default 100; fixed once the store exists)",
    )
    convert.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (shards to write, already committed) and exit",
    )
    add_no_progress(convert)
    add_storage_option(convert, "STORE and SRC")
    convert.set_defaults(func=run_convert_command)

    verify = subparsers.add_parser(
        "verify-store",
        help="compare a store with its source sample by sample (exit 1 on differences)",
        description="Decode samples from SRC afresh and compare every array bit for bit and every metadata value with STORE.",
    )
    verify.add_argument("store", metavar="STORE", help="store path or URL")
    verify.add_argument(
        "--against", required=True, metavar="SRC", help="the source the store was converted from"
    )
    verify.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="K",
        help="check K random samples (default: all)",
    )
    verify.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    add_storage_option(verify, "STORE and SRC")
    verify.set_defaults(func=run_verify_store_command)

    query = subparsers.add_parser(
        "query",
        help="run SQL over a store's metadata (table 'samples')",
        description=(
            "Run DuckDB SQL over the store's per-sample metadata, exposed as table 'samples' (sample_id, part, "
            "scenario, fx, fy, cx, cy, width, height, foreground_fraction, bbox_*, depth_*_cm, fov_*_deg, "
            "part_sha256, shard, status, error)."
        ),
    )
    query.add_argument("store", metavar="STORE", help="store path or URL")
    query.add_argument(
        "sql", metavar="SQL", help='e.g. "SELECT scenario, count(*) FROM samples GROUP BY 1"'
    )
    query.add_argument(
        "--format",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help="output format (default: table)",
    )
    query.add_argument(
        "-o",
        "--output",
        default=None,
        help="write to this file instead of stdout (required for parquet)",
    )
    add_storage_option(query, "STORE")
    query.set_defaults(func=run_query_command)

    show = subparsers.add_parser(
        "show",
        help="draw samples as a PNG (RGB, depth, foreground, normals)",
        description=(
            "Draw one sample (--id) of a store, a mirror folder or a part zip as a panel like the official "
            "visualize_data.py, or a labelled grid of the samples a query selects (--query, stores only)."
        ),
    )
    show.add_argument(
        "target",
        metavar="STORE_OR_MIRROR",
        help="store, mirror folder, part zip or extracted folder",
    )
    what = show.add_mutually_exclusive_group(required=True)
    what.add_argument("--id", type=int, default=None, help="sample id to draw")
    what.add_argument(
        "--query",
        default=None,
        metavar="SQL",
        help="draw the samples this SQL selects (needs a sample_id column)",
    )
    show.add_argument(
        "--limit", type=int, default=8, help="most samples drawn for --query (default 8)"
    )
    show.add_argument("--columns", type=int, default=2, help="grid columns for --query (default 2)")
    show.add_argument(
        "-o", "--output", default=None, help="PNG to write (default: sample_ID.png or query.png)"
    )
    add_storage_option(show, "the store or mirror")
    show.set_defaults(func=run_show_command)


def run_convert_command(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    options = parse_storage_options(args.storage_option) or None
    from ._prefect import prepare_prefect

    prepare_prefect()
    from prefect.types import SecretDict

    from flows.convert import convert_flow

    report = convert_flow(
        workers=args.workers,
        source_url=args.src,
        store_url=args.store,
        parts=parse_parts(args.parts) if args.parts else None,
        profile=args.profile,
        shard_size=args.shard_size,
        storage_options=SecretDict(options) if options else None,
        source_options=SecretDict(options) if options else None,
        dry_run=args.dry_run,
        progress=not args.no_progress,
    )
    print(report.plan_text if args.dry_run else report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURES


def run_verify_store_command(args: argparse.Namespace) -> int:
    from ..store import verify_store

    options = parse_storage_options(args.storage_option) or None
    report = verify_store(
        args.store,
        args.against,
        sample=args.sample,
        seed=args.seed,
        storage_options=options,
        source_options=options,
    )
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURES


def run_query_command(args: argparse.Namespace) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from ..store import open_store
    from ..store.query import format_table

    if args.format == "parquet" and not args.output:
        raise ConfigError("--format parquet writes binary: give -o FILE")
    table = open_store(args.store, parse_storage_options(args.storage_option) or None).query(
        args.sql
    )
    if args.format == "parquet":
        pq.write_table(table, args.output)
        print(f"wrote {table.num_rows} rows to {args.output}", file=sys.stderr)
        return EXIT_OK
    if args.format == "csv":
        import io

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        text = buffer.getvalue().decode()
    elif args.format == "json":
        import json

        text = json.dumps(table.to_pylist(), indent=1, default=str) + "\n"
    else:
        text = format_table(table)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {table.num_rows} rows to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_show_command(args: argparse.Namespace) -> int:
    from ..store.show import query_picture, sample_picture, write_picture

    options = parse_storage_options(args.storage_option) or None
    if args.id is not None:
        image = sample_picture(args.target, args.id, options)
        output = args.output or f"sample_{args.id}.png"
    else:
        image = query_picture(
            args.target, args.query, limit=args.limit, columns=args.columns, storage_options=options
        )
        output = args.output or "query.png"
    written = write_picture(output, image)
    print(f"wrote {written} ({image.shape[1]}x{image.shape[0]})")
    return EXIT_OK
