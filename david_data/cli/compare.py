"""``david-data compare``: two runs of a store side by side (a quick command: library only,
no Prefect)."""

from __future__ import annotations

import argparse
import textwrap

from ..compare.defaults import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_WORST,
    HEADLINE_METRICS,
)
from ..errors import ConfigError
from ..fsutil import parse_storage_options
from ._options import add_storage_option

DESCRIPTION = (
    "Compare run B with run A of one store, both scored by 'david-data evaluate'. For each "
    "metric and scenario, and over all samples, prints the mean of A and of B, the difference "
    "B-A and its paired bootstrap interval: samples are resampled with replacement, each "
    "keeping its A and B values together, and the interval is the central share of the "
    "resampled mean differences. Only samples both runs have a metric for are compared (the "
    "counts are printed). The verdict says 'B better' or 'B worse' only when the interval "
    "excludes 0. Lower is better, except normal_within_*.",
    "With -o DIR it also writes comparison.csv and, per metric: histogram_<metric>.png "
    "(per-sample values of A and B by scenario), bars_<metric>.png (means per scenario with "
    "B-A and its interval) and worst_<metric>.png (the samples where B is most worse than A: "
    "RGB, ground truth, both predictions and their error maps with colour bars in cm, degrees "
    "or alpha units).",
)
EXAMPLES = (
    "david-data compare /data/synthhuman-store depth-base-1a2b3c4d depth-large-5e6f7a8b",
    "david-data compare ./store base large -o compare/            # + CSV, charts, worst samples",
    "david-data compare ./store base large --metric depth_rmse --metric depth_absrel --worst 8",
    "david-data compare az://data/store base large --resamples 10000 --seed 1",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    headline = ", ".join(f"{m} ({t})" for t, m in HEADLINE_METRICS.items())
    compare = subparsers.add_parser(
        "compare",
        help="compare two runs' metrics per scenario: B-A and a paired bootstrap interval",
        description="\n\n".join(textwrap.fill(p, 88, break_on_hyphens=False) for p in DESCRIPTION),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("store", metavar="STORE", help="converted store, local or fsspec URL")
    compare.add_argument("run_a", metavar="RUN_A", help="the reference run (A)")
    compare.add_argument("run_b", metavar="RUN_B", help="the run compared with it (B)")
    compare.add_argument(
        "--metric",
        action="append",
        metavar="METRIC",
        help="metric to compare, repeatable: a column of table 'metrics' (foreground_*, "
        "depth_*, normal_*; a wrong name is answered with the list) (default: the headline "
        f"metric of each task both runs predicted: {headline})",
    )
    compare.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="also write comparison.csv and the PNG charts and panels into this folder",
    )
    compare.add_argument(
        "--worst",
        type=int,
        default=DEFAULT_WORST,
        metavar="N",
        help=f"samples in each worst_<metric>.png panel (default: {DEFAULT_WORST}; 0: no panel)",
    )
    compare.add_argument(
        "--resamples",
        type=int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help=f"bootstrap resamples (default: {DEFAULT_RESAMPLES})",
    )
    compare.add_argument(
        "--confidence",
        type=float,
        default=DEFAULT_CONFIDENCE,
        help=f"interval confidence, between 0 and 1 (default: {DEFAULT_CONFIDENCE})",
    )
    compare.add_argument(
        "--seed", type=int, default=0, help="bootstrap seed: same seed, same interval (default: 0)"
    )
    add_storage_option(compare, "STORE and DIR")
    compare.set_defaults(func=run_compare_command)


def run_compare_command(args: argparse.Namespace) -> int:
    from ..compare import compare_runs, write_comparison
    from ..store import open_store

    if args.resamples < 1:
        raise ConfigError(f"--resamples must be at least 1 (got {args.resamples})")
    if not 0 < args.confidence < 1:
        raise ConfigError(
            f"--confidence must lie between 0 and 1, e.g. 0.95 (got {args.confidence})"
        )
    if args.worst < 0:
        raise ConfigError(f"--worst must be 0 or more (got {args.worst})")
    options = parse_storage_options(args.storage_option) or None
    if args.output:
        _check_output_folder(args.output, options)
    store = open_store(args.store, options)
    comparison = compare_runs(
        store,
        args.run_a,
        args.run_b,
        metrics=args.metric,
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
    )
    print(comparison.render(), end="")
    if args.output:
        written = write_comparison(
            comparison, args.output, store=store, worst=args.worst, storage_options=options
        )
        print(
            f"wrote {len(written)} files to {args.output}: "
            + ", ".join(w.rsplit("/", 1)[-1] for w in written)
        )
    return 0


def _check_output_folder(url: str, options: dict[str, str] | None) -> None:
    from ..fsutil import resolve, to_url
    from ..store.output import refuse_store

    fs, path = resolve(url, options)
    refuse_store(fs, path, "-o")
    if fs.exists(path) and not fs.isdir(path):
        raise ConfigError(f"-o {to_url(fs, path)} is a file; give a folder, e.g. -o compare/")
