"""Issue 11, "Convert straight from the host" and sample selection for convert: a subset
read by ranged requests from the local host equals the same subset of the mirror (arrays
and metadata, but ``part_sha256``), under faults, when killed and resumed, on Dask; a
server that ignores ranges is a clear error; a part replaced on the host mid-run fails
its shards by name and is converted again; ``--where``/``--ids``/``--limit`` select the
same samples from a mirror and an extracted folder, and a sparse store grows."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from convert_helpers import FIELDS, SHARD, Mirror, store_content
from process_helpers import kill_when

from david_data import facts
from david_data.catalog import PartCatalog, load_catalog, open_catalog_source
from david_data.cli import main
from david_data.convert import ConversionReport, convert_settings, plan_convert, run_convert
from david_data.engine import make_executor
from david_data.mirror import RetryPolicy
from david_data.store import open_store
from david_data.synth import SynthOptions, encode_sample, write_extracted, write_part
from david_data.synth.host import Fault, HostStats, LocalHost

IDS = "2-6,5001-5003,98038-98041,200004"
SELECTED = [2, 3, 4, 5, 6, 5001, 5002, 5003, 98038, 98039, 98040, 98041, 200004]
FAST = RetryPolicy(base_delay=0.01, max_delay=0.1, stall_timeout=0.5, connect_timeout=5.0)
CLI = [sys.executable, "-m", "david_data"]
LOCAL_ENV = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}


def convert_subset(src: str, out: Path, workers: int = 1, **options: Any) -> ConversionReport:
    plan = plan_convert(convert_settings(src, str(out), shard_size=SHARD, **options))
    with make_executor("processes", workers) as executor:
        return run_convert(plan, executor)


def array_files(root: Path) -> dict[str, bytes]:
    """The arrays' shard objects, by path."""
    return {k: v for k, v in store_content(root).items() if k.split("/")[0] in FIELDS}


def rows(root: Path) -> pa.Table:
    return open_store(str(root)).metadata


def same_but_part_sha256(a: Path, b: Path) -> None:
    """Arrays bit for bit and every metadata value but ``part_sha256``."""
    assert array_files(a) and array_files(a) == array_files(b)
    assert rows(a).drop(["part_sha256"]).equals(rows(b).drop(["part_sha256"]))


pytestmark = pytest.mark.usefixtures("catalog_cache")


@pytest.fixture(scope="module")
def mirror_subset(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("subset") / "mirror.zarr"
    assert convert_subset(str(mirror.path), out, ids=IDS).ok
    return out


@pytest.fixture(scope="module")
def remote_subset(
    host: LocalHost, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, HostStats]:
    """``david-data convert URL STORE --ids IDS`` (in this process) and what it cost the host."""
    out = tmp_path_factory.mktemp("subset") / "remote.zarr"
    host.reset_stats()
    args = [host.base_url, str(out), "--ids", IDS, "--shard-size", str(SHARD), "--workers", "1"]
    assert main(["convert", *args, "--no-progress"]) == 0
    return out, host.stats


def test_a_subset_from_the_host_equals_the_same_subset_of_the_mirror(
    mirror: Mirror,
    host: LocalHost,
    store: Path,
    mirror_subset: Path,
    remote_subset: tuple[Path, HostStats],
) -> None:
    remote, stats = remote_subset
    same_but_part_sha256(remote, mirror_subset)
    table = rows(remote)
    assert table.column("sample_id").to_pylist() == SELECTED  # sparse: exactly those
    assert set(table.column("status").to_pylist()) == {"ok"}
    for part, identity in zip(
        table.column("part").to_pylist(), table.column("part_sha256").to_pylist(), strict=True
    ):
        assert identity == f"etag:{host.etag(part)}"
    full, sub = open_store(str(store)), open_store(str(remote))
    for sid in (2, 5003, 98040, 200004):
        got, want = sub.sample(sid), full.sample(sid)
        assert all(np.array_equal(got[f], want[f]) for f in FIELDS)

    # Only the four parts holding the ids were asked, and only for their directories and
    # the members of the selected samples, every read carrying If-Match.
    parts = sorted(mirror.ids)
    assert {r.path for r in stats.requests} == set(parts)
    catalog = load_catalog(open_catalog_source(host.base_url), parts)
    extents = [
        (row["part"], row["offset"], row["end_offset"], row["sample_id"])
        for row in catalog.members.to_pylist()
    ]
    sizes = {p: (mirror.path / p).stat().st_size for p in parts}
    gets = [r for r in stats.requests if r.method == "GET"]
    assert all(r.status == 206 and r.if_match == f"{host.etag(r.path)}" for r in gets)
    for r in gets:
        assert r.range is not None
        start, end = (int(x) for x in r.range.removeprefix("bytes=").split("-"))
        if end == sizes[r.path] - 1:
            continue  # the directory at the end of the part
        touched = {sid for p, a, b, sid in extents if p == r.path and a <= end and b > start}
        assert touched <= set(SELECTED), (r.path, r.range, sorted(touched - set(SELECTED)))
    assert stats.total_bytes < 0.7 * sum(sizes.values())


def test_faults_on_the_host_still_give_the_same_store(
    mirror: Mirror, remote_subset: tuple[Path, HostStats], tmp_path: Path
) -> None:
    listed = load_catalog(open_catalog_source(str(mirror.path)), ["SynthHuman_0001.zip"])
    member = next(
        r for r in listed.members.to_pylist() if r["sample_id"] == 5002 and r["kind"] == "depth"
    )
    with LocalHost(mirror.path) as faulty:
        faulty.faults.add(Fault.status(503, retry_after=0), times=2)
        faulty.faults.add(Fault.reset(after_bytes=300_000), times=2)
        faulty.faults.add(Fault.stall(after_bytes=100_000, seconds=1.5), times=1)
        flipped = faulty.faults.add(
            Fault.corrupt(member["offset"] + 200), times=1, path="SynthHuman_0001.zip"
        )
        out = tmp_path / "faults.zarr"
        report = convert_subset(faulty.base_url, out, ids=IDS, policy=FAST)
        assert report.ok, report.summary()
        assert flipped.fired == 1
    same_but_part_sha256(out, remote_subset[0])


def test_a_killed_remote_conversion_resumes_to_the_same_store(
    mirror: Mirror,
    host: LocalHost,
    remote_subset: tuple[Path, HostStats],
    catalog_cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Killed at a known point, whatever the machine's speed: the last part's member
    reads stall, so the other five shards commit and the sixth waits for bytes. The last
    part holds two selected ids (one shard): planning reads one of them (the pixel-type
    probe, handed to the shard), the shard's unit reads the other, and that read stalls."""
    ids = IDS.replace("200004", "200002-200003")  # (one shard of 4 ids: 200000-200003)
    reference = tmp_path / "reference.zarr"
    assert main(["convert", host.base_url, str(reference), "--ids", ids, "--shard-size",
                 str(SHARD), "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    target = tmp_path / "killed.zarr"
    args = [host.base_url, str(target), "--ids", ids, "--shard-size", str(SHARD)]
    last = max(mirror.ids)
    # Planning's probe read of the last part passes (the catalogs are cached already, by
    # remote_subset, in the folder given below).
    host.faults.add(Fault.stall(after_bytes=0, seconds=0.01), times=1, path=last)
    stalled = host.faults.add(Fault.stall(after_bytes=0, seconds=600), times=None, path=last)
    try:
        proc = subprocess.Popen(
            [*CLI, "convert", *args, "--workers", "1", "--no-progress"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**LOCAL_ENV, "DAVID_DATA_CACHE_DIR": str(catalog_cache)},
        )
        kill_when(
            proc,
            lambda: len(list((target / "metadata").glob("shard-*.parquet"))) >= 5
            and stalled.fired > 0,
            timeout=240,
            what="5 shards committed and the stalled part reached",
        )
    finally:
        host.faults.clear()
    assert len(list((target / "metadata").glob("shard-*.parquet"))) == 5
    capsys.readouterr()
    assert main(["convert", *args, "--workers", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 shards written, 5 already committed" in out, out
    assert store_content(target) == store_content(reference)
    assert rows(target).equals(rows(reference))
    assert not list(target.rglob("*.tmp"))


def test_a_dask_cluster_converts_straight_from_the_host(
    host: LocalHost, remote_subset: tuple[Path, HostStats], tmp_path: Path, dask_cluster: str
) -> None:
    target = tmp_path / "dask.zarr"
    run = subprocess.run(
        [*CLI, "convert", host.base_url, str(target), "--ids", IDS, "--shard-size", str(SHARD),
         "--no-progress", "--dask-address", dask_cluster],
        capture_output=True, text=True, timeout=300, env=LOCAL_ENV,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert store_content(target) == store_content(remote_subset[0])


def test_a_server_ignoring_ranges_is_a_clear_error_naming_it(
    mirror: Mirror,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))
    with LocalHost(mirror.path) as plain:
        plain.faults.add(Fault.ignore_range(), times=None)
        code = main(["convert", plain.base_url, str(tmp_path / "s.zarr"), "--ids", "2"])
        server = f"127.0.0.1:{plain.port}"
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"error: the server {server} ignores byte ranges" in err and "Traceback" not in err
    assert not (tmp_path / "s.zarr").exists()


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Part 0 (ids 0-11) and a replacement whose sample 1 has other pixels."""
    root = tmp_path_factory.mktemp("versions")
    write_part(root / "old" / facts.part_name(0), range(12))
    other = encode_sample(7)["rgb_0000007.png"]
    write_part(root / "new" / facts.part_name(0), range(12), overrides={"rgb_0000001.png": other})
    return root


def test_a_part_replaced_mid_run_fails_its_shard_by_name_then_is_converted_again(
    versions: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = facts.part_name(0)
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(versions / "old" / name, served / name)
    store = tmp_path / "store.zarr"
    with LocalHost(served) as changing:
        settings = convert_settings(
            changing.base_url, str(store), parts="0", shard_size=SHARD, policy=FAST
        )
        plan = plan_convert(settings)
        assert [j.shard for j in plan.jobs] == [0, 1, 2]
        with make_executor("processes", 1) as executor:
            # The run's first units commit shards 0 and 1; then the part is replaced on
            # the host; the run goes on with what it planned (the old ETag).
            first = run_convert(dataclasses.replace(plan, jobs=plan.jobs[:2]), executor)
            assert first.ok, first.summary()
            changing.replace(name, (versions / "new" / name).read_bytes())
            rest = run_convert(dataclasses.replace(plan, jobs=plan.jobs[2:]), executor)
        assert not rest.ok and rest.shards_written == 0
        ((shard, reason),) = rest.shard_failures
        assert shard == 2 and f"{name} changed on 127.0.0.1:{changing.port}" in reason
        assert "shard 2 NOT written" in rest.summary()
        # Handled, so told in one line (issue 15 item 9), not with a traceback.
        told = [r for r in caplog.records if "shard 2" in r.getMessage() and r.levelno > 10]
        assert len(told) == 1 and told[0].exc_info is None, told
        assert f"{name} changed on" in told[0].getMessage()

        again = plan_convert(settings)  # a HEAD shows the new ETag: the catalog is read again
        changed = f"{name} changed since the shard was written"
        assert [(j.shard, j.reason) for j in again.jobs] == [(0, changed), (1, changed), (2, "")]
        with make_executor("processes", 1) as executor:
            assert run_convert(again, executor).ok
        etag = changing.etag(name)
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy(versions / "new" / name, local / name)
    reference = tmp_path / "reference.zarr"
    assert convert_subset(str(local), reference).ok
    same_but_part_sha256(store, reference)
    assert set(rows(store).column("part_sha256").to_pylist()) == {f"etag:{etag}"}


def test_where_selects_the_same_samples_from_a_mirror(mirror: Mirror, tmp_path: Path) -> None:
    out = tmp_path / "full_body.zarr"
    report = convert_subset(str(mirror.path), out, where="scenario = 'full_body'")
    assert report.ok, report.summary()
    assert rows(out).column("sample_id").to_pylist() == [98040, 98041, 98042, 98043]
    assert "4 of 29 samples selected (--where \"scenario = 'full_body'\")" in report.summary()


def test_limit_draws_the_same_samples_from_an_extracted_folder_and_a_zip(
    mirror: Mirror, tmp_path: Path
) -> None:
    folder = tmp_path / "x"
    write_extracted(folder, range(10), SynthOptions(pixel_type="float"))
    plan = plan_convert(
        convert_settings(str(folder), str(tmp_path / "x.zarr"), shard_size=SHARD, limit=3, seed=7)
    )
    assert "selection: 3 of 10 samples selected (--limit 3 --seed 7)" in plan.describe()
    from_folder, from_zip = tmp_path / "folder.zarr", tmp_path / "zip.zarr"
    assert convert_subset(str(folder), from_folder, limit=3, seed=7).ok
    assert convert_subset(str(mirror.path), from_zip, parts="0", limit=3, seed=7).ok
    ids = rows(from_folder).column("sample_id").to_pylist()
    assert len(ids) == 3 and ids == rows(from_zip).column("sample_id").to_pylist()
    assert array_files(from_folder) == array_files(from_zip)
    other = tmp_path / "other.zarr"
    assert convert_subset(str(folder), other, limit=3, seed=8).ok
    assert rows(other).column("sample_id").to_pylist() != ids


def test_a_sparse_store_grows_with_each_selection(mirror: Mirror, tmp_path: Path) -> None:
    out = tmp_path / "grow.zarr"
    assert convert_subset(str(mirror.path), out, ids="0-1").ok
    first = array_files(out)
    second = convert_subset(str(mirror.path), out, ids="2-3")
    assert second.rewritten == ((0, "it lacks selected samples"),)
    assert rows(out).column("sample_id").to_pylist() == [0, 1, 2, 3]
    whole = tmp_path / "whole.zarr"
    assert convert_subset(str(mirror.path), whole, ids="0-3").ok
    assert array_files(out) == array_files(whole) != first
    third = convert_subset(str(mirror.path), out, ids="2-3")
    assert third.shards_written == 0 and third.shards_skipped == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--ids", "2", "--seed", "3"], "--seed only applies with --limit N"),
        (["--ids", "9-3"], "id range '9-3' runs backwards"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--where", "no_such_column = 1"], "catalog query failed"),
        (["--ids", "5009"], "1 requested sample id(s) are in none of the catalogued parts"),
        (["--where", "scenario = 'none'"], "the selection matches no sample"),
    ],
)
def test_bad_selections_are_one_error_line_and_write_nothing(
    mirror: Mirror,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    out = tmp_path / "never.zarr"
    assert main(["convert", str(mirror.path), str(out), *options, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists()


def test_every_selected_member_is_read_from_the_host_once(
    mirror: Mirror, host: LocalHost, remote_subset: tuple[Path, HostStats]
) -> None:
    # The sample each part's pixel types are probed on is converted from what the probe
    # read: no member is fetched twice.
    _, stats = remote_subset
    parts = sorted(mirror.ids)
    sizes = {p: (mirror.path / p).stat().st_size for p in parts}
    spans = []
    for r in stats.requests:
        if r.method == "GET" and r.range is not None:
            start, end = (int(x) for x in r.range.removeprefix("bytes=").split("-"))
            if end != sizes[r.path] - 1:  # not a directory read
                spans.append((r.path, start, end))
    catalog = load_catalog(open_catalog_source(host.base_url), parts)
    for row in catalog.members.to_pylist():
        if row["sample_id"] in SELECTED:
            reads = [s for s in spans if s[0] == row["part"] and s[1] <= row["offset"] < s[2] + 1]
            assert len(reads) == 1, (row["member"], reads)


def _one_part(root: Path, overrides: dict[str, bytes | None] | None = None) -> Path:
    write_part(root / facts.part_name(0), range(4), overrides=overrides)
    return root


def test_a_sample_lacking_a_file_and_a_stray_entry_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))
    served = _one_part(tmp_path / "served", {"depth_0000001.exr": None, "notes.txt": b"x"})
    with LocalHost(served) as one:
        args = [one.base_url, str(tmp_path / "s.zarr"), "--ids", "0-3", "--shard-size", "4"]
        assert main(["convert", *args, "--workers", "1", "--no-progress"]) == 1
    captured = capsys.readouterr()
    part = facts.part_name(0)
    assert f"sample 1 ({part}): depth_0000001.exr: member is missing" in captured.out
    assert f"{part}: entry 'notes.txt' is not a SynthHuman sample file" in captured.err


def test_a_wrong_cached_listing_is_read_again_when_a_member_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.compute as pc

    from david_data.catalog.cache import store_cached

    monkeypatch.setenv("DAVID_DATA_CACHE_DIR", str(tmp_path / "cache"))
    served = _one_part(tmp_path / "served")
    reference = tmp_path / "reference.zarr"
    assert convert_subset(str(served), reference).ok
    name = facts.part_name(0)
    with LocalHost(served) as one:
        source = open_catalog_source(one.base_url)
        (part,) = load_catalog(source, [name], policy=FAST).parts
        right = part.table
        crc = right.column("crc32")
        wrong = pc.if_else(
            pc.equal(right.column("member"), "normal_0000002.exr"),
            pc.bit_wise_xor(crc, pa.scalar(1, pa.int64())),
            crc,
        )
        bad = right.set_column(right.schema.get_field_index("crc32"), "crc32", wrong)
        damaged = PartCatalog(name=part.name, url=part.url, version=part.version, table=bad)
        store_cached(source.base, damaged)  # a damaged cache

        out = tmp_path / "remote.zarr"
        report = convert_subset(one.base_url, out, parts="0", policy=FAST)
        assert report.ok, report.summary()
        one.reset_stats()
        again = load_catalog(source, [name], policy=FAST)  # the new reading is cached
        assert [r.method for r in one.stats.requests] == ["HEAD"]
        assert again.members.equals(right)
    same_but_part_sha256(out, reference)
