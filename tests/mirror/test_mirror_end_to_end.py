"""Acceptance 2-5: byte-identical mirrors through the CLI, kill/resume, faults, Azurite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mirror_helpers import (
    FAST,
    PARTS,
    SEGMENT,
    flip_byte,
    member_data_offset,
    same_bytes,
    tail_size,
)

from david_data.fsutil import resolve
from david_data.mirror import MirrorSettings, download_file, mirror, verify_mirror
from david_data.mirror.segmented import part_paths
from david_data.mirror.state import load_state
from david_data.synth.host import Fault, LocalHost

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "david_data"]


def _settings(dest: str, host: LocalHost, parts: tuple[str, ...], **kw: object) -> MirrorSettings:
    return MirrorSettings(
        dest=dest, parts=parts, base_url=host.base_url, segment_size=SEGMENT, policy=FAST, **kw
    )  # type: ignore[arg-type]


def test_cli_mirror_then_verify_names_a_flipped_member(
    tmp_path: Path, host: LocalHost, served: Path, prefect_env: dict[str, str]
) -> None:
    """Acceptance 2, through the CLI and the Prefect flow."""
    dest = tmp_path / "mirror"
    env = {**prefect_env, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            *CLI,
            "mirror",
            str(dest),
            "--base-url",
            host.base_url,
            "--parts",
            "0-2",
            "--no-progress",
            "--segments",
            "3",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "3 fetched and verified" in run.stdout
    for name in PARTS[:3]:
        assert same_bytes(served / name, dest / name)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert sorted(manifest["parts"]) == list(PARTS[:3])
    verify = subprocess.run(
        [*CLI, "verify", str(dest)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert verify.returncode == 0, verify.stdout
    assert "3 good" in verify.stdout
    flip_byte(dest / PARTS[1], member_data_offset(dest / PARTS[1], "normal_0005001.exr") + 100)
    verify = subprocess.run(
        [*CLI, "verify", str(dest)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert verify.returncode == 1
    assert "CORRUPT SynthHuman_0001.zip" in verify.stdout
    assert "member normal_0005001.exr: CRC-32 mismatch" in verify.stdout
    assert "SHA-256" in verify.stdout
    dry = subprocess.run(
        [*CLI, "mirror", str(dest), "--base-url", host.base_url, "--parts", "0-3", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert (
        dry.returncode == 0
        and "bytes to fetch" in dry.stdout
        and "SynthHuman_0003.zip     fetch" in dry.stdout
    )


def test_sigkill_then_rerun_refetches_at_most_one_segment_per_part(
    tmp_path: Path, host: LocalHost, served: Path
) -> None:
    """Acceptance 3: kill -9 mid-transfer, rerun, identical bytes, little re-fetched."""
    dest = tmp_path / "mirror"
    parts = PARTS[:2]
    host.faults.add(Fault.rate_cap(300_000), times=None)  # per connection
    script = (
        "import sys\n"
        "from david_data.mirror import MirrorSettings, mirror\n"
        f"mirror(MirrorSettings(dest=sys.argv[1], base_url=sys.argv[2], parts={parts!r}, "
        f"segment_size={SEGMENT}, segments=4))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(dest), host.base_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            states = [load_state(part_paths(dest / p)[1]) for p in parts]
            if all(s is not None and s.bytes_done >= 2 * SEGMENT for s in states):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first run did not make progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    served_first = dict(host.stats.bytes_served)
    for p in parts:
        assert served_first[p] < (served / p).stat().st_size, "killed too late to test resume"
    host.faults.clear()
    host.reset_stats()
    report = mirror(_settings(str(dest), host, parts))
    assert not report.failed
    for p in parts:
        size = (served / p).stat().st_size
        assert same_bytes(served / p, dest / p)
        # The central directory and end records are read twice by design (the second read
        # is compared with the first); nothing else should be fetched twice beyond a segment.
        refetched = served_first[p] + host.stats.bytes_served[p] - size - tail_size(served / p)
        assert refetched <= SEGMENT, f"{p}: {refetched} bytes fetched twice (segment {SEGMENT})"
        # Every resumed request was a closed range guarded by If-Match.
        for record in host.stats.requests_for(p, "GET"):
            assert record.range and "-" in record.range and not record.range.endswith("-")
            assert record.if_match == host.etag(p)
    assert verify_mirror(str(dest)).ok


def test_every_fault_type_and_failing_parts(tmp_path: Path, host: LocalHost, served: Path) -> None:
    """Acceptance 4: all faults on -> identical bytes; 404 and corrupt parts reported by name."""
    good = PARTS[:2]
    corrupt = PARTS[2]
    flip_byte(served / corrupt, member_data_offset(served / corrupt, "rgb_0010000.png") + 5000)
    (served / PARTS[3]).unlink()  # 404
    armed = [
        host.faults.add(Fault.status(503, retry_after=0), times=2),
        host.faults.add(Fault.status(429, retry_after=1), times=1, path=good[1]),
        host.faults.add(Fault.reset(after_bytes=20_000), times=2, path=good[0]),
        host.faults.add(Fault.stall(after_bytes=10_000, seconds=2.5), times=1, path=good[1]),
        host.faults.add(Fault.ignore_range(), times=1, path=good[0]),
        host.faults.add(Fault.malformed_range(), times=1, path=good[1]),
        host.faults.add(Fault.shifted_range(shift=7, claim="true"), times=1, path=good[0]),
        host.faults.add(Fault.shifted_range(shift=7, claim="asked"), times=1, path=good[1]),
    ]
    dest = tmp_path / "mirror"
    report = mirror(_settings(str(dest), host, PARTS))
    for fault in armed:
        assert fault.fired >= 1, fault
    for name in good:
        assert same_bytes(served / name, dest / name)
    failed = {o.name: o.error for o in report.failed}
    assert set(failed) == {corrupt, PARTS[3]}
    assert "404" in failed[PARTS[3]]
    assert "rgb_0010000.png" in failed[corrupt] and "server's copy is corrupt" in failed[corrupt]
    assert not (dest / corrupt).exists() and not (dest / PARTS[3]).exists()
    assert report.retries >= 2
    assert sum(o.restarts + o.repairs for o in report.outcomes) >= 2
    assert f"FAILED {corrupt}" in report.summary()


def test_part_replaced_during_download_restarts_cleanly(
    tmp_path: Path, host: LocalHost, served: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name, other = PARTS[0], PARTS[1]
    new_content = (served / other).read_bytes()
    host.faults.add(Fault.rate_cap(400_000), times=None)

    def replace_when_started() -> None:
        while host.stats.bytes_served.get(name, 0) < 200_000:
            time.sleep(0.01)
        host.replace(name, new_content)

    thread = threading.Thread(target=replace_when_started)
    thread.start()
    report = mirror(_settings(str(tmp_path / "m"), host, (name,)))
    thread.join()
    assert not report.failed
    assert (tmp_path / "m" / name).read_bytes() == new_content
    assert report.outcomes[0].restarts >= 1
    assert any("restarting" in r.message for r in caplog.records)
    statuses = [r.status for r in host.stats.requests_for(name, "GET")]
    assert 412 in statuses


def test_download_file_verifies_and_is_atomic(
    tmp_path: Path, host: LocalHost, served: Path
) -> None:
    import hashlib

    from david_data.errors import PermanentDownloadError, VerificationError

    data = (served / PARTS[0]).read_bytes()
    dest = tmp_path / "models" / "m.onnx"
    result = download_file(
        host.url(PARTS[0]), str(dest), segments=3, expected_sha256=hashlib.sha256(data).hexdigest()
    )
    assert (
        dest.read_bytes() == data
        and result.size == len(data)
        and result.etag == host.etag(PARTS[0])
    )
    bad = tmp_path / "models" / "bad.onnx"
    with pytest.raises(VerificationError, match="SHA-256"):
        download_file(host.url(PARTS[0]), str(bad), expected_sha256="0" * 64)
    assert not bad.exists() and not part_paths(bad)[0].exists()
    with pytest.raises(PermanentDownloadError, match="404"):
        download_file(host.url("nope.onnx"), str(tmp_path / "x"))


@pytest.mark.azurite
def test_mirror_to_azurite(
    tmp_path: Path, served: Path, azurite: object, az_container: str
) -> None:
    """Acceptance 5: identical blobs; a part failing midway leaves nothing under its key."""
    corrupt = PARTS[2]
    flip_byte(served / corrupt, member_data_offset(served / corrupt, "alpha_0010001.png") + 50)
    options = azurite.storage_options  # type: ignore[attr-defined]
    dest = f"{az_container}/mirror"
    with LocalHost(served, content_md5=True) as host:
        host.faults.add(Fault.reset(after_bytes=30_000), times=2)
        settings = _settings(
            dest,
            host,
            PARTS[:3],
            storage_options=options,
            scratch_dir=str(tmp_path / "scratch"),
            extract=True,
        )
        report = mirror(settings)
    assert [o.name for o in report.failed] == [corrupt]
    fs, path = resolve(dest, options)
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False, refresh=True))
    assert names == ["SynthHuman", "SynthHuman_0000.zip", "SynthHuman_0001.zip", "manifest.json"]
    for name in PARTS[:2]:
        assert fs.cat_file(f"{path}/{name}") == (served / name).read_bytes()
    extracted = fs.find(f"{path}/SynthHuman")
    assert len(extracted) == 20
    assert not list(
        (tmp_path / "scratch").glob("*.part")
    )  # only the failed part's leftovers were removed
    assert verify_mirror(dest, options).ok


def test_a_local_mirror_loads_only_what_it_needs(
    tmp_path: Path, host: LocalHost, served: Path
) -> None:
    # The command is what users time (issue 17, goal 7: whole-process CPU): with a local
    # DEST it must not load fsspec (nor asyncio, which fsspec brings), the Prefect,
    # table or image stacks, or the loopback host, and with no proxy set, not
    # urllib.request; fetching with --extract, again with everything in place, and a verify.
    heavy = (
        "fsspec", "asyncio", "prefect", "duckdb", "pyarrow", "numpy", "zarr", "cv2",
        "david_data.synth.host", "urllib.request",
    )  # fmt: skip
    dest = tmp_path / "mirror"
    commands = [
        ["mirror", str(dest), "--base-url", host.base_url, "--parts", "0-1", "--extract"],
        ["mirror", str(dest), "--base-url", host.base_url, "--parts", "0-1", "--extract"],
        ["verify", str(dest)],
    ]
    for command in commands:
        script = (
            "import sys\nfrom david_data.cli import main\n"
            f"code = main({[*command, '--no-progress']!r})\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))\nsys.exit(code)\n"
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PREFECT_") and not k.lower().endswith("_proxy")
        }
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip().splitlines()[-1] == "[]", (command, done.stdout)
    for name in PARTS[:2]:
        assert same_bytes(served / name, dest / name)
    assert (dest / "SynthHuman").is_dir()
