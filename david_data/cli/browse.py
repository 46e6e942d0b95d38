"""``david-data browse``: a static report of a store's samples, runs and metrics (in-process
by default, a flow run with ``--prefect``, pictures drawn on a Dask cluster with
``--dask-address``)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ._options import add_job_options

if TYPE_CHECKING:
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import EXAMPLES

    EXAMPLES["browse"] = (
        "david-data browse ./store -o report/            # then open report/index.html",
        "david-data browse ./store --run base --query \"SELECT sample_id FROM samples WHERE scenario = 'face'\" -o faces/",
    )
    parser = subparsers.add_parser(
        "browse",
        help="write a static web page of a store's samples, runs and metrics (opens from disk)",
        description=(
            "Write a self-contained report folder (REPORT/index.html opens from disk, no server): "
            "thumbnails of each sample's RGB, alpha, depth and normals and of each run's predictions "
            "and error maps; a paged table of metadata and metrics, sorted worst first by the first "
            "run's first metric (click a header to sort, type to filter); a detail view per sample. "
            "Pictures are drawn in parallel and kept: a rerun draws only what is missing. Exit 1 "
            "when some samples' pictures could not be drawn (each named)."
        ),
    )
    parser.add_argument("store", metavar="STORE", help="store path or URL")
    parser.add_argument(
        "-o", "--output", required=True, metavar="REPORT", help="report folder to write (local)"
    )
    parser.add_argument(
        "--run",
        action="append",
        default=None,
        metavar="RUN",
        help="show this run, repeatable (default: every run of the store)",
    )
    parser.add_argument(
        "--query",
        default=None,
        metavar="SQL",
        help="show the samples this SQL selects (a sample_id column; tables samples and metrics)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="processes drawing pictures (default: CPUs, at most 4; ignored with --dask-address)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="then serve the report folder over HTTP (only that folder) until Ctrl-C",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address --serve listens on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port --serve listens on (default 8000; 0: any free one)",
    )
    add_job_options(parser, "STORE", dask=True)
    parser.set_defaults(func=run_browse_command)


def run_browse_command(args: argparse.Namespace) -> int:
    from .. import jobs
    from ._run import job_options, run_job

    job = jobs.browse()
    options = job_options(
        args, job.options(), store_url=args.store, runs=tuple(args.run) if args.run else None
    )
    code = run_job(args, job, options)
    if not args.serve or code == 130:
        return code
    return serve_report(job.settings(**options).output, args.host, args.port) or code


def serve_report(folder: str, host: str, port: int) -> int:
    """Serve the report until Ctrl-C (then exit status 0)."""
    from ..browse.serve import report_server

    server = report_server(folder, host, port)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    print(f"serving {folder} at http://{bound_host}:{bound_port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
