"""``david-data catalog`` (SQL over every sample of the parts, from their zip directories)
and ``david-data fetch`` (any subset of samples, member by member, verified)."""

from __future__ import annotations

import argparse
import sys

from .. import jobs, settings
from ..engine import EXIT_FAILURES, EXIT_OK
from ..errors import ConfigError
from ..facts import parse_parts
from ..fsutil import parse_storage_options
from ._options import add_format_options, add_job_options, add_storage_option
from ._run import drawn_seed, job_options, plan_or_run

_BASE_URL_HELP = (
    "where the parts are: the data host's base URL (default: $DAVID_DATA_BASE_URL or the "
    "official host), or a mirror folder (local or fsspec URL such as az://container/mirror)"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    catalog = subparsers.add_parser(
        "catalog",
        help="list every sample of the parts from their zip directories; SQL over them",
        description=(
            "Read each part's zip central directory with a few ranged requests (cached per part "
            "version in the user cache: a second call sends only HEAD requests) and print "
            "per-part and per-scenario counts and bytes, or run SQL over the tables 'samples' "
            "(sample_id, part, scenario, bytes, members, complete) and 'members' (sample_id, "
            "part, member, kind, offset, end_offset, compressed_size, size, crc32, method)."
        ),
    )
    catalog.add_argument(
        "sql",
        metavar="SQL",
        nargs="?",
        default=None,
        help='e.g. "SELECT scenario, count(*) FROM samples GROUP BY 1" (default: an overview)',
    )
    catalog.add_argument("--base-url", default=None, help=_BASE_URL_HELP)
    catalog.add_argument(
        "--parts",
        default=None,
        help="'all', 'sample' or e.g. '0-3,7' (default: all parts; a mirror's own parts)",
    )
    add_format_options(
        catalog,
        format_help="output format of a query (default: table)",
        output_help="write a query's result to this file (parquet needs it)",
    )
    add_storage_option(catalog, "a mirror given as --base-url")
    catalog.set_defaults(func=run_catalog_command)

    fetch = subparsers.add_parser(
        "fetch",
        help="fetch any subset of samples, member by member, verified, without whole parts",
        description=(
            "Pick samples from the catalog and fetch only their files into DEST/SynthHuman/ (the "
            "official extracted layout): neighbouring members in one ranged request, requests in "
            "parallel, each member's local header and CRC-32 checked as it streams, every file "
            "written atomically, the samples recorded in DEST/fetch-manifest.json. A rerun reads "
            "every file already there again (size and CRC-32) and fetches only what is missing "
            "or fails that check, naming it; a part that changed on the server is catalogued "
            "again. 'david-data verify DEST' checks the files without fetching."
        ),
    )
    fetch.add_argument("dest", metavar="DEST", help="folder or fsspec URL to write into")
    fetch.add_argument(
        "--where",
        default=None,
        metavar="SQL_PREDICATE",
        help="condition on the 'samples' view, e.g. \"scenario = 'face'\"",
    )
    fetch.add_argument(
        "--ids", default=None, metavar="SPEC", help="sample ids and ranges, e.g. 0-999,120000"
    )
    fetch.add_argument(
        "--limit", type=int, default=None, help="draw this many of the matching samples at random"
    )
    fetch.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of --limit: the same seed, the same samples (default 0)",
    )
    fetch.add_argument(
        "--parts",
        default=None,
        help="'all', 'sample' or e.g. '0-3,7' (default: the parts holding --ids, else all)",
    )
    fetch.add_argument("--base-url", default=None, help=_BASE_URL_HELP)
    fetch.add_argument("--jobs", type=int, default=8, help="requests in flight at once (default 8)")
    fetch.add_argument(
        "--dry-run",
        action="store_true",
        help="print samples, bytes to fetch and bytes present per scenario, and exit",
    )
    add_job_options(fetch, "DEST (and a mirror given as --base-url)", dask=True)
    fetch.set_defaults(func=run_fetch_command)


def run_catalog_command(args: argparse.Namespace) -> int:
    from ..catalog import load_catalog, open_catalog_source, overview
    from ..store.query import format_table

    if args.format == "parquet" and not args.output:
        raise ConfigError("--format parquet writes binary: give -o FILE")
    if args.sql is None and (args.output or args.format != "table"):
        raise ConfigError("--format and -o apply to a query: give SQL too")
    options = parse_storage_options(args.storage_option)
    source = open_catalog_source(args.base_url or settings.data_base_url(), options)
    parts = parse_parts(args.parts) if args.parts else None
    catalog = load_catalog(source, parts)
    problems = catalog.problems()
    for line in [*problems, *catalog.strays()]:
        print(f"warning: {line}", file=sys.stderr)
    if args.sql is not None:
        from .query import print_or_write

        print_or_write(catalog.query(args.sql), args.format, args.output)
    else:
        by_part, by_scenario = overview(catalog)
        samples = sum(by_part.column("samples").to_pylist())
        print(f"catalog of {source.base}: {len(catalog.parts)} part(s), {samples:,} samples")
        sys.stdout.write(format_table(by_part))
        sys.stdout.write(format_table(by_scenario))
    return EXIT_FAILURES if problems else EXIT_OK


def run_fetch_command(args: argparse.Namespace) -> int:
    job = jobs.fetch()
    return plan_or_run(args, job, job_options(args, job.options(), seed=drawn_seed(args)))
