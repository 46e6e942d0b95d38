"""``david-data query`` (SQL over a store's metadata) and ``david-data show`` (samples drawn
as a PNG): quick commands that call the library directly (no Prefect import)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..engine import EXIT_OK
from ..errors import ConfigError
from ..fsutil import parse_storage_options
from ._options import add_format_options, add_storage_option


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    add_format_options(
        query,
        format_help="output format (default: table)",
        output_help="write to this file instead of stdout (required for parquet)",
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
