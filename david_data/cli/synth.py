"""``david-data synth`` (write synthetic SynthHuman parts) and ``david-data serve``
(serve a folder over loopback HTTP like the official host). Quick commands: no Prefect."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import ConfigError
from ..facts import SAMPLE_PART, SAMPLES_PER_PART, parse_parts
from ..progress import progress_for
from ._options import add_no_progress


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    synth = subparsers.add_parser(
        "synth",
        help="write synthetic SynthHuman parts (real layout, real RGB crops) for tests and demos",
        description=(
            "Write synthetic SynthHuman parts into DEST in the layout of the real ones: five "
            "files per sample (rgb/alpha PNG, depth/normal EXR, cam txt), 7-digit ids, 384x512. "
            "Part k holds ids k*5000 onwards; SynthHuman_sample.zip holds id 0. The same options "
            "always give byte-identical files. Options cover what the real data may vary in."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument(
        "dest", metavar="DEST", help="local folder to write into (created if missing)"
    )
    synth.add_argument(
        "--parts",
        default="0-2",
        help="parts to write: 'all', 'sample', indices and ranges such as '0-3,7', or a mix like 'sample,0-1'",
    )
    synth.add_argument(
        "--samples-per-part",
        type=int,
        default=20,
        metavar="N",
        help=f"samples in each numbered part (1 ... {SAMPLES_PER_PART}; about 0.5 MB each)",
    )
    synth.add_argument(
        "--extracted",
        action="store_true",
        help="write the samples as extracted files under DEST/SynthHuman/ instead of zips",
    )
    synth.add_argument(
        "--folder", metavar="NAME", help="put the members in this folder inside each zip"
    )
    synth.add_argument(
        "--float", action="store_true", help="write EXR pixels as 32-bit float instead of half"
    )
    synth.add_argument(
        "--depth-channel",
        choices=("Y", "R", "Z", "depth"),
        default="Y",
        help="channel name of the depth EXR",
    )
    synth.add_argument(
        "--normal-channels",
        choices=("XYZ", "RGB"),
        default="XYZ",
        help="channel names of the normal EXR",
    )
    synth.add_argument(
        "--zip64",
        action="store_true",
        help="write ZIP64 records in every header, as a part over 4 GiB has them",
    )
    synth.add_argument(
        "--deflate", action="store_true", help="deflate zip members instead of storing them"
    )
    add_no_progress(synth)
    synth.set_defaults(func=run_synth)

    serve = subparsers.add_parser(
        "serve",
        help="serve a folder over loopback HTTP like the official host (HEAD, Range, ETag)",
        description=(
            "Serve the files under DIR on 127.0.0.1 the way the Azure static website serves the "
            "parts (HEAD, single Range, ETag, Last-Modified), until Ctrl-C. Use the printed base "
            "URL as 'david-data mirror --base-url'."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("dir", metavar="DIR", help="folder whose files are served")
    serve.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    serve.add_argument(
        "--content-md5", action="store_true", help="send Content-MD5 (base64 MD5 of the whole file)"
    )
    serve.add_argument(
        "--rate",
        type=int,
        default=None,
        metavar="BYTES_PER_S",
        help="cap every connection at this many bytes per second, like a remote server",
    )
    from ..synth.faults import add_fault_option

    add_fault_option(serve)
    serve.set_defaults(func=run_serve)


def _selected_parts(spec: str) -> list[str]:
    items = [item.strip() for item in spec.split(",") if item.strip()]
    names = [SAMPLE_PART] if any(item.lower() == "sample" for item in items) else []
    rest = ",".join(item for item in items if item.lower() != "sample")
    if rest:
        names += parse_parts(rest)
    if not names:
        raise ConfigError(f"--parts {spec!r} selects no part; try '0-2' or 'sample'")
    return names


def run_synth(args: argparse.Namespace) -> int:
    from fsspec.implementations.local import LocalFileSystem

    from ..fsutil import refuse_zarr_folder
    from ..synth import SynthOptions, part_sample_ids, write_extracted, write_parts

    options = SynthOptions(
        folder=args.folder,
        depth_channel=args.depth_channel,
        normal_channels=tuple(args.normal_channels),
        pixel_type="float" if args.float else "half",
        zip64=args.zip64,
        compression="deflated" if args.deflate else "stored",
    )
    names = _selected_parts(args.parts)
    ids = [i for name in names for i in part_sample_ids(name, args.samples_per_part)]
    dest = Path(args.dest)
    blocking = next((p for p in (dest, *dest.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(
            f"cannot write parts into {dest}: {blocking} is a file, not a folder; give a folder "
            "path (it is created when missing)"
        )
    refuse_zarr_folder(LocalFileSystem(), str(dest), "DEST")
    started = time.monotonic()
    with progress_for(not args.no_progress) as progress:
        if args.extracted:
            root = write_extracted(dest, sorted(set(ids)), options, progress=progress)
            total = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
            summary = f"{len(set(ids))} samples under {root}"
        else:
            paths = write_parts(dest, names, args.samples_per_part, options, progress=progress)
            total = sum(p.stat().st_size for p in paths)
            summary = f"{len(paths)} part(s), {len(ids)} samples in {dest}"
    for name in names if not args.extracted else []:
        print(dest / name)
    print(f"wrote {summary}: {total / 1e6:,.1f} MB in {time.monotonic() - started:.1f} s")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ..synth.host import serve

    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; give the folder holding the parts to serve")
    if args.rate is not None and args.rate <= 0:
        raise ConfigError(f"--rate must be a positive number of bytes per second (got {args.rate})")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def announce(url: str) -> None:
        print(url, flush=True)
        faults = f" with faults {', '.join(args.fault)}" if args.fault else ""
        print(
            f"serving {len(files)} file(s) from {root}{faults}; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )

    serve(
        root,
        port=args.port,
        content_md5=args.content_md5,
        rate=args.rate,
        faults=args.fault,
        announce=announce,
    )
    print("stopped", file=sys.stderr)
    return 0
