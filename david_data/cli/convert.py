"""``david-data convert`` (in-process by default, a flow run with ``--prefect``, units on a
Dask cluster with ``--dask-address``), ``verify-store`` (likewise) and the quick commands ``query`` and ``show`` (library only: no
Prefect import)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..fsutil import parse_storage_options
from ._options import add_no_progress, add_run_options, add_storage_option

if TYPE_CHECKING:
    from ..engine import JobReport

EXIT_OK, EXIT_FAILURES, EXIT_ERROR = 0, 1, 2


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
        "src",
        metavar="SRC",
        help="mirror folder, part zip, extracted SynthHuman/ folder, or the data host's "
        "http(s) base URL (e.g. https://.../iccv-2025/data/)",
    )
    convert.add_argument(
        "store", metavar="STORE", help="store path or fsspec URL (e.g. az://container/store)"
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
        help="codecs of a new store: 'fast' (Blosc-LZ4/zstd, fastest reads, portable, default) or "
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
    add_no_progress(convert)
    add_storage_option(convert, "STORE and SRC")
    add_run_options(convert, dask=True)
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
    verify.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="processes checking samples (default: CPUs, at most 4; ignored with --dask-address)",
    )
    add_no_progress(verify)
    add_storage_option(verify, "STORE and SRC")
    add_run_options(verify, dask=True)
    verify.set_defaults(func=run_verify_store_command)

    query = subparsers.add_parser(
        "query",
        help="run SQL over a store's metadata (table 'samples') and metrics (table 'metrics')",
        description=(
            "Run DuckDB SQL over the store's per-sample metadata, exposed as table 'samples' (sample_id, part, "
            "scenario, fx, fy, cx, cy, width, height, foreground_fraction, bbox_*, depth_*_cm, fov_*_deg, "
            "part_sha256, shard, status, error), and the per-sample metrics of the store's runs as table "
            "'metrics' (run, sample_id, foreground_*, depth_*, normal_*; written by 'david-data evaluate'), "
            "e.g. SELECT s.scenario, avg(m.depth_absrel) FROM samples s JOIN metrics m USING (sample_id) "
            "WHERE m.run = 'R' GROUP BY 1."
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
    from ..convert.plan import convert_settings, plan_convert

    if args.seed is not None and args.limit is None:
        raise ConfigError("--seed only applies with --limit N (which samples are drawn)")
    options = parse_storage_options(args.storage_option) or None
    plan = plan_convert(
        convert_settings(
            args.src,
            args.store,
            parts=args.parts,
            profile=args.profile,
            shard_size=args.shard_size,
            workers=args.workers,
            retry_errors=args.retry_errors,
            storage_options=options,
            source_options=options,
            where=args.where,
            ids=args.ids,
            limit=args.limit,
            seed=args.seed or 0,
        )
    )
    if args.dry_run:
        print(plan.describe())
        return EXIT_OK

    def run_local() -> JobReport:
        from ..convert.run import run_convert
        from ..engine import make_executor
        from ..progress import progress_for

        with (
            progress_for(not args.no_progress) as progress,
            make_executor("processes", plan.settings.workers, dask_address=args.dask_address) as ex,
        ):
            return run_convert(plan, ex, progress=progress)

    from ._run import run_job

    settings = plan.settings
    return run_job(
        args,
        run_local=run_local,
        flow="convert",
        flow_params={
            "source_url": settings.source_url,
            "store_url": settings.store_url,
            "parts": list(settings.parts) if settings.parts is not None else None,
            "profile": args.profile,
            "shard_size": args.shard_size,
            "workers": settings.workers,
            "retry_errors": settings.retry_errors,
            "where": settings.where,
            "ids": settings.ids,
            "limit": settings.limit,
            "seed": settings.seed,
            "dask_address": args.dask_address,
            "storage_options": options,
            "source_options": options,
        },
    )


def run_verify_store_command(args: argparse.Namespace) -> int:
    from ..convert.verify_store import VerifyStoreSettings, plan_verify_store

    options = parse_storage_options(args.storage_option) or None
    plan = plan_verify_store(
        VerifyStoreSettings(
            store_url=args.store,
            source_url=args.against,
            sample=args.sample,
            seed=args.seed,
            workers=args.workers,
            storage_options=options,
            source_options=options,
        )
    )

    def run_local() -> JobReport:
        from ..convert.verify_store import run_verify_store
        from ..engine import make_executor
        from ..progress import progress_for

        with (
            progress_for(not args.no_progress) as progress,
            make_executor("processes", plan.settings.workers, dask_address=args.dask_address) as ex,
        ):
            return run_verify_store(plan, ex, progress=progress)

    from ._run import run_job

    s = plan.settings
    return run_job(
        args,
        run_local=run_local,
        flow="verify_store",
        flow_params={
            "store_url": s.store_url,
            "source_url": s.source_url,
            "sample": s.sample,
            "seed": s.seed,
            "workers": s.workers,
            "dask_address": args.dask_address,
            "storage_options": options,
            "source_options": options,
        },
    )


def run_query_command(args: argparse.Namespace) -> int:
    from ..store import open_store
    from ..store.output import check_output_file

    if args.format == "parquet" and not args.output:
        raise ConfigError("--format parquet writes binary: give -o FILE")
    options = parse_storage_options(args.storage_option) or None
    if args.output:
        check_output_file(args.output, example=f"result.{args.format.replace('table', 'txt')}")
    print_or_write(open_store(args.store, options).query(args.sql), args.format, args.output)
    return EXIT_OK


def print_or_write(table: object, fmt: str, output: str | None) -> None:
    """Print a query result as ``fmt``, or write it atomically to ``output`` (checked first
    by the caller with ``check_output_file``). Shared by ``query`` and ``catalog``."""
    from ..store.output import write_output

    if not output and fmt == "table":
        from ..store.query import format_table

        sys.stdout.write(format_table(table))
        return
    data = _query_bytes(table, fmt)
    if not output:
        sys.stdout.write(data.decode())
        return
    written = write_output(output, data)
    print(f"wrote {getattr(table, 'num_rows', 0)} rows to {written}", file=sys.stderr)


def _query_bytes(table: object, fmt: str) -> bytes:
    """A query result encoded as ``fmt`` (table, csv, json or parquet)."""
    import io

    import pyarrow as pa

    assert isinstance(table, pa.Table)
    buffer = io.BytesIO()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, buffer)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        nested = [f"{f.name} ({f.type})" for f in table.schema if pa.types.is_nested(f.type)]
        if nested:
            raise ConfigError(
                f"--format csv holds flat values, but the result's column(s) {', '.join(nested)} "
                "are nested: use --format json or parquet, or flatten them in SQL (e.g. "
                "to_json(column), unnest(column))"
            )
        pacsv.write_csv(table, buffer)
    elif fmt == "json":
        import json

        buffer.write((json.dumps(table.to_pylist(), indent=1, default=str) + "\n").encode())
    else:
        from ..store.query import format_table

        buffer.write(format_table(table).encode())
    return buffer.getvalue()


def run_show_command(args: argparse.Namespace) -> int:
    from ..store.output import check_output_file
    from ..store.show import query_picture, sample_picture, write_picture

    options = parse_storage_options(args.storage_option) or None
    if args.id is not None:
        from ..store.store import check_sample_id

        check_sample_id(args.id)
    elif args.limit < 1 or args.columns < 1:
        flag, value = ("--limit", args.limit) if args.limit < 1 else ("--columns", args.columns)
        raise ConfigError(f"{flag} must be at least 1 (got {value})")
    output = args.output or (f"sample_{args.id}.png" if args.id is not None else "query.png")
    check_output_file(output, example="picture.png")
    if args.id is not None:
        image = sample_picture(_sample_arrays(args.target, args.id, options), args.id)
    else:
        image = query_picture(
            args.target, args.query, limit=args.limit, columns=args.columns, storage_options=options
        )
    written = write_picture(output, image)
    print(f"wrote {written} ({image.shape[1]}x{image.shape[0]})")
    return EXIT_OK


def _sample_arrays(target: str, sample_id: int, options: dict[str, str] | None) -> dict[str, Any]:
    """One sample's arrays from a store (a folder with a zarr.json), or decoded from a
    mirror folder, part zip or extracted folder."""
    from ..fsutil import join, resolve

    fs, root = resolve(target, options)
    if fs.exists(join(root, "zarr.json")):
        from ..store import open_store

        return open_store(target, options).sample(sample_id)
    if not fs.exists(root):
        raise ConfigError(
            f"{target} does not exist; give a store, a mirror folder, a part zip or an "
            "extracted SynthHuman folder"
        )
    from ..convert.decode import decode_sample
    from ..sources import open_source

    source = open_source(target, options)
    return decode_sample(sample_id, source.read_sample(sample_id)).arrays()
