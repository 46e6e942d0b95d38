"""Sample-level fetch from the local host: exactly the chosen samples, byte-identical,
under faults, resumable, with the bytes the server sends counted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from catalog_helpers import FAST, PARTS, members, sample_ids_in, tree

from david_data import facts
from david_data.catalog import load_catalog, open_catalog_source
from david_data.catalog.select import Selection
from david_data.cli import main
from david_data.engine import make_executor
from david_data.fetch.plan import FetchSettings, plan_fetch
from david_data.fetch.run import run_fetch
from david_data.progress import TaskHandle
from david_data.synth.generator import SynthOptions, write_part
from david_data.synth.host import Fault, LocalHost

NAMES = list(PARTS)
FULL_BODY = [98_040, 98_041, 98_042, 198_013, 198_014, 198_015]


class ReplaceOnFirstResult:
    """A progress sink that replaces a part on the host when the first unit reports."""

    def __init__(self, host: LocalHost, name: str, data: bytes) -> None:
        self.host, self.name, self.data = host, name, data
        self.replaced = False

    def task(self, description: str, total: float | None = None, unit: str = "items") -> TaskHandle:
        return self  # type: ignore[return-value]

    def advance(self, amount: float = 1) -> None:
        if not self.replaced:
            self.replaced = True
            self.host.replace(self.name, self.data)

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        pass

    def finish(self, status: str = "done") -> None:
        pass


def _wanted(served: Path, parts: list[str], ids: set[int]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in parts:
        files.update(members(served / name))
    return {n: d for n, d in files.items() if facts.parse_member_name(n).sample_id in ids}  # type: ignore[union-attr]


def _extents(host: LocalHost, parts: list[str], ids: set[int]) -> int:
    """Bytes of the chosen samples' member records in the parts as served now."""
    catalog = load_catalog(open_catalog_source(host.base_url), parts, policy=FAST)
    table = catalog.members.to_pylist()
    return sum(r["end_offset"] - r["offset"] for r in table if r["sample_id"] in ids)


def test_a_scenario_across_part_boundaries_under_faults(
    host: LocalHost, served: Path, tmp_path: Path
) -> None:
    parts = NAMES[1:]  # 19 (faces | full body, ZIP64) and 39 (full | upper body, deflated)
    dest = tmp_path / "dest"
    settings = FetchSettings(
        dest=str(dest),
        base_url=host.base_url,
        parts=tuple(parts),
        selection=Selection(where="scenario = 'full_body'"),
        jobs=3,
        max_unit=256 << 10,  # many small units, so the part changes between them
        policy=FAST,
    )
    plan = plan_fetch(settings)
    assert [s.sample_id for s in plan.samples] == FULL_BODY
    sizes = {(served / n).stat().st_size for n in parts}

    write_part(tmp_path / "new.zip", PARTS[parts[1]][0], SynthOptions(compression="deflated"))
    new_part = (tmp_path / "new.zip").read_bytes()  # same samples, no folder: new offsets
    sizes.add(len(new_part))
    armed = [
        host.faults.add(Fault.status(503, retry_after=0), times=3),
        host.faults.add(Fault.reset(after_bytes=100_000), times=2, path=parts[0]),
        host.faults.add(Fault.stall(after_bytes=50_000, seconds=30), times=1, path=parts[0]),
    ]
    progress = ReplaceOnFirstResult(host, parts[1], new_part)
    with make_executor("threads", settings.jobs) as executor:
        report = run_fetch(plan, executor, progress=progress)

    assert all(a.fired for a in armed)
    assert report.failure_count == 0, report.summary()
    assert (report.complete, report.interrupted) == (6, False)
    assert report.reread == (parts[1],)
    # Exactly the full-body samples, byte-identical to the members served now.
    assert tree(dest / "SynthHuman") == _wanted(served, parts, set(FULL_BODY))
    manifest = json.loads((dest / "fetch-manifest.json").read_bytes())
    assert sorted(int(i) for i in manifest["samples"]) == FULL_BODY
    assert manifest["samples"]["198013"]["version"] == host.etag(parts[1])

    # Bytes sent: the members (at most 5 % more) plus the end-of-file reads that hold the
    # central directories (the plan's two, and the changed part's again), each read twice
    # (the second read confirms the first).
    requests = host.stats.requests
    directory_reads = [
        r for r in requests if r.range and int(r.range.rsplit("-", 1)[1]) + 1 in sizes
    ]
    assert len(directory_reads) == 6
    member_bytes = sum(r.bytes_sent for r in requests) - sum(r.bytes_sent for r in directory_reads)
    assert member_bytes <= 1.05 * _extents(host, parts, set(FULL_BODY))
    assert all(r.bytes_sent <= (64 << 10) + 42 for r in directory_reads)


def test_same_seed_same_samples_and_a_rerun_fetches_nothing(
    host: LocalHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fetch(dest: Path, seed: str) -> set[int]:
        args = ["fetch", str(dest), "--base-url", host.base_url, "--parts", "0,19,39"]
        assert main([*args, "--limit", "5", "--seed", seed, "--no-progress"]) == 0
        return sample_ids_in(dest / "SynthHuman")

    first = fetch(tmp_path / "a", "7")
    assert len(first) == 5
    files = tree(tmp_path / "a")
    host.reset_stats()
    assert fetch(tmp_path / "a", "7") == first
    assert {r.method for r in host.stats.requests} == {"HEAD"}  # nothing fetched
    assert tree(tmp_path / "a") == files
    assert "5 of 5 samples complete (0 fetched now)" in capsys.readouterr().out
    assert fetch(tmp_path / "b", "7") == first
    assert fetch(tmp_path / "c", "8") != first


def test_a_killed_fetch_resumes_to_identical_files(
    host: LocalHost, served: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    command = [
        sys.executable, "-m", "david_data", "fetch", str(dest), "--base-url", host.base_url,
        "--parts", "0,19,39", "--limit", "10", "--seed", "3", "--jobs", "2", "--no-progress",
    ]  # fmt: skip
    host.faults.add(Fault.rate_cap(1_000_000), times=None)  # slow enough to be killed mid-way
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = dest / "SynthHuman"
    deadline = time.monotonic() + 60
    while not (folder.is_dir() and len([p for p in folder.iterdir() if p.suffix != ".tmp"]) >= 4):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = {p.name for p in folder.iterdir() if p.suffix != ".tmp"}
    assert 4 <= len(before) < 50

    host.faults.clear()
    host.reset_stats()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "10 of 10 samples complete" in done.stdout
    ids = sample_ids_in(folder)
    assert len(ids) == 10
    assert tree(folder) == _wanted(served, NAMES, ids)  # no temp file left either
    # Only what was missing was fetched again (the files present were checked, not fetched).
    catalog = load_catalog(open_catalog_source(host.base_url), NAMES, policy=FAST)
    still_missing = sum(
        r["end_offset"] - r["offset"]
        for r in catalog.members.to_pylist()
        if r["sample_id"] in ids and r["member"].rsplit("/", 1)[-1] not in before
    )
    fetched = sum(r.bytes_sent for r in host.stats.requests if r.method == "GET")
    assert fetched <= 1.05 * still_missing


def test_a_corrupt_member_is_fetched_again_then_named(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    part = served / NAMES[1]
    expected = _wanted(served, [NAMES[1]], {98040, 98041})
    del expected["rgb_0098040.png"]
    with zipfile.ZipFile(part) as archive:
        info = archive.getinfo("rgb_0098040.png")
    with open(part, "r+b") as handle:  # flip a byte in the middle of the member's data
        handle.seek(info.header_offset + 1000)
        byte = handle.read(1)
        handle.seek(info.header_offset + 1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    dest = tmp_path / "dest"
    assert main(["fetch", str(dest), "--base-url", host.base_url, "--ids", "98040-98041"]) == 1
    out = capsys.readouterr().out
    assert "FAILED rgb_0098040.png: CRC-32 mismatch" in out
    asked = [
        r
        for r in host.stats.requests
        if r.range and r.range.startswith(f"bytes={info.header_offset}-")
    ]
    assert len(asked) == 2  # fetched again on its own, then reported
    assert tree(dest / "SynthHuman") == expected  # every other file, and nothing wrong
    manifest = json.loads((dest / "fetch-manifest.json").read_bytes())
    assert list(manifest["samples"]) == ["98041"]


def test_a_server_ignoring_ranges_stops_the_fetch_naming_it(
    host: LocalHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fetch", str(tmp_path / "dest"), "--base-url", host.base_url, "--ids", "0-1"]
    assert main([*args, "--dry-run"]) == 0  # catalogued (and cached) while ranges worked
    host.faults.add(Fault.ignore_range(), times=None)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: the server 127.0.0.1:{host.port} ignores byte ranges" in err


def test_dry_run_counts_per_scenario(
    host: LocalHost, served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    assert main(["fetch", str(dest), "--base-url", host.base_url, "--ids", "98040"]) == 0
    present = sum(len(d) for d in tree(dest / "SynthHuman").values())
    capsys.readouterr()
    where = "--where", "sample_id >= 98039"
    assert (
        main(
            ["fetch", str(dest), "--base-url", host.base_url, "--parts", "19", *where, "--dry-run"]
        )
        == 0
    )
    out = capsys.readouterr().out
    face = next(line for line in out.splitlines() if line.startswith("face"))
    full = next(line for line in out.splitlines() if line.startswith("full_body"))
    assert face.split()[:3] == ["face", "1", "1"]
    assert full.split()[:3] == ["full_body", "3", "2"]
    assert full.split()[-2:] == [f"{present / 1000:.1f}", "KB"]
    assert sample_ids_in(dest / "SynthHuman") == {98040}  # a dry run writes nothing


def test_fetch_from_a_mirror_folder(served: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    assert main(["fetch", str(dest), "--base-url", str(served), "--ids", "0-2"]) == 0
    assert tree(dest / "SynthHuman") == members(served / NAMES[0])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "choose samples with --where, --ids, --limit or --parts"),
        (["--where", "true", "--seed", "3"], "--seed only applies with --limit"),
        (["--ids", "5-3"], "runs backwards"),
        (["--ids", "3"], "in none of the catalogued parts"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--parts", "0", "--where", "no_such_column = 1"], "catalog query failed"),
        (["--parts", "0", "--where", "scenario = 'upper_body'"], "the selection matches no sample"),
    ],
)
def test_bad_options_are_refused_up_front(
    host: LocalHost,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    dest = tmp_path / "dest"
    assert main(["fetch", str(dest), "--base-url", host.base_url, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not dest.exists()


@pytest.mark.slow
def test_fetch_as_a_flow_run(
    prefect_harness: None, host: LocalHost, served: Path, tmp_path: Path
) -> None:
    from david_data.flows.fetch import fetch_flow

    dest = tmp_path / "dest"
    state = fetch_flow(
        str(dest), base_url=host.base_url, ids="98040-98042", jobs="2", return_state=True
    )
    report = state.result()
    assert (report.complete, report.failure_count) == (3, 0)
    assert tree(dest / "SynthHuman") == _wanted(served, [NAMES[1]], {98040, 98041, 98042})


def test_fetch_by_ids_loads_only_what_it_needs(
    host: LocalHost, served: Path, tmp_path: Path
) -> None:
    # The command is what users time: it must not load DuckDB (ids need no SQL), pyarrow
    # or numpy (ids need no table: the catalog is cached as plain columns), fsspec (DEST
    # is a local folder), the whole mirror, the loopback host or the image stack; with a
    # cold catalog cache, and again with it warm.
    heavy = (
        "duckdb", "pyarrow", "numpy", "fsspec", "asyncio", "david_data.mirror.part",
        "david_data.mirror.run", "david_data.synth.host", "zarr", "cv2", "prefect",
    )  # fmt: skip
    for run in ("cold", "warm"):
        dest = tmp_path / run
        script = (
            "import sys\nfrom david_data.cli import main\n"
            f"code = main(['fetch', {str(dest)!r}, '--base-url', {host.base_url!r}, "
            "'--ids', '0-2,98040', '--no-progress'])\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))\nsys.exit(code)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]", run
        assert sample_ids_in(dest / "SynthHuman") == {0, 1, 2, 98040}


def test_a_fetch_caches_columns_for_ids_and_tables_for_sql(
    host: LocalHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ids alone over a few parts: plain columns (JSON, no pyarrow); a condition, or more
    # parts than COLUMNS_PARTS: Parquet tables, which load quicker when there are many.
    from david_data.catalog.cache import cache_folder
    from david_data.fetch import plan

    folder = cache_folder(open_catalog_source(host.base_url).base)

    def cached(*args: str) -> set[str]:
        """The forms a cold fetch (empty cache) caches."""
        for path in folder.glob("*"):
            path.unlink()
        dest = tmp_path / str(len(list(tmp_path.iterdir())))
        command = ["fetch", str(dest), "--base-url", host.base_url, *args, "--no-progress"]
        assert main(command) == 0
        return {p.suffix for p in folder.iterdir()}

    assert cached("--ids", "0-1,98040") == {".json"}
    assert cached("--parts", "0,19", "--where", "sample_id IN (1, 98041)") == {".parquet"}
    monkeypatch.setattr(plan, "COLUMNS_PARTS", 1)
    assert cached("--ids", "0-1,98040") == {".parquet"}
