"""The ``david-data`` command line.

One module per job registers its sub-commands. Long jobs (mirror, convert, infer,
evaluate, pipeline) run their engine in this process by default, or as a Prefect flow
run when asked (see :mod:`._run`); quick commands (verify, query, show, models) call the
library directly and start no Prefect.

Exit status (:mod:`david_data.engine.report`): 0 success, 1 the job ran but some items
failed, 2 bad usage or a fatal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from ..engine.report import EXIT_ERROR, EXIT_INTERRUPTED, INTERRUPTED_HINT
from ..engine.signals import handle_signals, stop_requested
from ..errors import DavidDataError, JobInterrupted
from ..log import configure_cli_logging
from ._options import require_run_extras

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = (
    "synth", "mirror", "catalog", "convert", "query", "infer", "compare", "browse", "models",
    "pipeline", "demo",
)

# Shown under each command's --help. Keyed by the command as typed after `david-data`.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "synth": (
        "david-data synth ./served --parts 0-2 --samples-per-part 20",
        "david-data synth ./served --parts sample,0 --float --zip64",
    ),
    "serve": (
        "david-data serve ./served                      # prints the base URL, Ctrl-C stops",
        "david-data serve ./served --port 8000 --content-md5",
    ),
    "mirror": (
        "david-data mirror /data/synthhuman --parts 0-3,7 --jobs 4 --segments 4",
        "david-data mirror /data/synthhuman --parts all --dry-run",
        "david-data mirror az://datasets/synthhuman --parts sample",
        "david-data mirror /data/synthhuman --parts 0 --base-url http://127.0.0.1:8000/",
    ),
    "verify": (
        "david-data verify /data/synthhuman",
        "david-data verify az://datasets/synthhuman --quick",
        "david-data verify ./faces          # a folder 'david-data fetch' wrote into",
    ),
    "catalog": (
        "david-data catalog --parts 0-3",
        "david-data catalog \"SELECT scenario, count(*) FROM samples GROUP BY 1\" --format csv",
    ),
    "fetch": (
        "david-data fetch ./faces --where \"scenario = 'face'\" --limit 100 --seed 0",
        "david-data fetch ./some --ids 0-99,150000 --dry-run",
    ),
    "convert": (
        "david-data convert /data/synthhuman /data/synthhuman-store --workers 2",
        "david-data convert /data/synthhuman /data/synthhuman-store --dry-run",
        "david-data convert az://datasets/synthhuman az://datasets/store --profile compact",
        "david-data convert ./mirror ./store --dask-address tcp://scheduler:8786",
    ),
    "verify-store": (
        "david-data verify-store /data/synthhuman-store --against /data/synthhuman --sample 500",
    ),
    "query": (
        "david-data query /data/synthhuman-store \"SELECT scenario, count(*) FROM samples GROUP BY 1\"",
        "david-data query ./store \"SELECT sample_id, fx FROM samples WHERE fov_x_deg > 40\" --format csv -o wide.csv",
        "david-data query ./store \"SELECT s.scenario, avg(m.depth_absrel) FROM samples s JOIN metrics m USING (sample_id) WHERE m.run = 'base' GROUP BY 1\"",
    ),
    "show": (
        "david-data show /data/synthhuman-store --id 123 -o sample.png",
        "david-data show ./store --query \"SELECT * FROM samples WHERE scenario='face'\" --limit 8 -o faces.png",
        "david-data show /data/synthhuman/SynthHuman_0000.zip --id 42",
    ),
    "infer": (
        "david-data infer ./photos ./predictions --model depth-base --batch-size 4",
        "david-data infer \"az://photos/**/*.jpg\" az://predictions --model-path depth.onnx --task depth",
        "david-data infer --from-store ./store ./pred --query \"scenario = 'face'\" --model multitask-large",
        "david-data infer --from-store ./store --model-path m.onnx --run base --ids 0-99   # no OUTPUT: into run 'base' of the store",
        "david-data infer ./photos ./predictions --model depth-base --dask-address tcp://scheduler:8786",
    ),
    "evaluate": (
        "david-data evaluate /data/synthhuman-store --model depth-base -o eval/",
        "david-data evaluate ./store --run base -o eval/            # score the stored predictions of run 'base'",
        "david-data evaluate ./store --model-path m.onnx --task depth --query \"scenario = 'upper_body'\"",
    ),
    "models": (
        "david-data models list",
        "david-data models fetch depth-base normal-base foreground-base",
    ),
    "models list": ("david-data models list",),
    "models fetch": (
        "david-data models fetch depth-base",
        "david-data models fetch multitask-large --dir ./models",
    ),
    "predict": (
        "david-data predict photo.jpg --model depth-base normal-base foreground-base -o panels/",
        "david-data predict photo.jpg --multitask-model multi.onnx -o panels/",
    ),
    "pipeline": (
        "david-data pipeline /data/synthhuman /data/synthhuman-store --parts 0-3",
        "david-data pipeline ./mirror ./store --parts sample --model depth-base",
        "david-data pipeline ./mirror ./store --model-path m.onnx --task depth --dask-address tcp://scheduler:8786",
    ),
    "demo": (
        "david-data demo",
        "david-data demo --workdir /tmp/demo --samples-per-part 4 --no-progress",
    ),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one ``error:`` line naming the fix, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {self.prog}: {message}; see '{self.prog} --help'\n")


class _ExamplesMixin(argparse.HelpFormatter):
    """Keep the examples epilog as written (one command per line); wrap the rest as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give each (sub-)command its :data:`EXAMPLES` as an epilog, recursively."""
    examples = EXAMPLES.get(path)
    if examples and not parser.epilog:
        parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
        base: Any = parser.formatter_class
        if not (isinstance(base, type) and issubclass(base, _ExamplesMixin)):
            formatter: Any = type(f"Examples{base.__name__}", (_ExamplesMixin, base), {})
            parser.formatter_class = formatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _add_examples(sub, f"{path} {name}".strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="david-data",
        description=(
            "Mirror, convert, query and run the DAViD models on SynthHuman. "
            "Run 'david-data COMMAND --help' for each command's options and examples."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # not written yet
            raise
        module.register(sub)
    _add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``david-data`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `david-data`: say what there is
        parser.print_help()
        return EXIT_ERROR
    configure_cli_logging(args.verbose)
    try:
        # A signal before the job's units run (set-up, planning) ends the command at once;
        # an error that follows a stop request is the stop's doing, not the data's.
        with handle_signals(interrupt=True):
            require_run_extras(args)
            code = args.func(args)
    except DavidDataError as exc:
        if stop_requested() or isinstance(exc, JobInterrupted):
            print(INTERRUPTED_HINT, file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(INTERRUPTED_HINT, file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        _close_filesystems_before_exit()
    logging.shutdown()
    return int(code or 0)


def _close_async_filesystems() -> None:
    """Close adlfs's Azure clients now, while the event loops they were made on still run.

    adlfs closes them from ``weakref.finalize`` at interpreter exit, on the filesystem's
    own loop; for the filesystems zarr made (on zarr's loop), zarr's own exit hook has
    closed that loop by then, and Python prints a "Loop is not running" traceback."""
    if "adlfs" not in sys.modules:
        return
    import weakref

    from adlfs import AzureBlobFileSystem

    registry: dict[Any, Any] = getattr(weakref.finalize, "_registry", {})
    for finalizer in list(registry):
        info = finalizer.peek()
        if info is not None and isinstance(info[0], AzureBlobFileSystem):
            with contextlib.suppress(Exception):  # a loop already gone: nothing to close on
                finalizer()  # runs once, then is detached


def _close_filesystems_before_exit() -> None:
    """Run :func:`_close_async_filesystems` first among the exit hooks (they run last
    registered, first run), so before zarr closes its loop."""
    atexit.unregister(_close_async_filesystems)
    atexit.register(_close_async_filesystems)


def run() -> NoReturn:
    """The ``david-data`` program (and ``python -m david_data``): :func:`main`, then exit
    with its status, skipping the C++ static destructors of native thread pools.

    pyarrow's (and DuckDB's) pools can abort the process at interpreter teardown with
    "terminate called without an active exception" (apache/arrow#34314): measured here, 4
    of 80 ``convert --dry-run`` runs exited 134 after printing a complete, correct summary.
    So once :func:`main` has returned (its jobs are over: what threads remain are idle
    pools), the exit hooks run and the output is flushed as at a normal exit, and the
    process then ends with ``os._exit``. Call :func:`main` instead to stay in the
    interpreter."""
    import os

    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to flush into
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
