"""Library units: segments, state, manifest ranges, zip checks, plan, space, lock."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from mirror_helpers import FAST, PARTS, SEGMENT, flip_byte, member_data_offset

from david_data.errors import InsufficientSpaceError, LockedError, UnsafeMemberError
from david_data.mirror import MirrorSettings, mirror, plan_mirror
from david_data.mirror.lock import hold_lock
from david_data.mirror.manifest import compact_ranges, expand_ranges
from david_data.mirror.memberset import check_member_name
from david_data.mirror.plan import MirrorPlan, check_space
from david_data.mirror.segmented import part_paths
from david_data.mirror.state import PartState, load_state, plan_segments, save_state
from david_data.mirror.zipcheck import check_zip
from david_data.net.retry import RetryPolicy
from david_data.synth.generator import SynthOptions, write_part
from david_data.synth.host import LocalHost


def test_segments_cover_the_file_exactly() -> None:
    for size, conns, seg in [(1, 4, 10), (10, 4, 3), (1000, 4, 64), (1000, 1, 10_000), (7, 3, 1)]:
        segments = plan_segments(size, conns, seg)
        covered = [b for s in segments for b in range(s.start, s.end + 1)]
        assert covered == list(range(size))
        assert all(s.length <= seg for s in segments)
    assert plan_segments(0, 4, 10) == []
    assert len(plan_segments(1000, 4, 1 << 20)) == 4  # a small file still uses every connection


def test_state_round_trip_and_garbage(tmp_path: Path) -> None:
    state = PartState(
        url="u",
        size=100,
        etag='"e"',
        last_modified=None,
        content_md5=None,
        segments=plan_segments(100, 2, 64),
    )
    state.segments[0].done = 30
    path = tmp_path / "x.state"
    save_state(path, state)
    loaded = load_state(path)
    assert loaded is not None and loaded.to_json() == state.to_json()
    assert loaded.bytes_done == 30 and not loaded.complete
    assert loaded.matches(size=100, etag='"e"') and not loaded.matches(size=100, etag='"f"')
    path.write_text("{not json")
    assert load_state(path) is None


def test_compact_ranges_round_trip() -> None:
    ids = [0, 1, 2, 7, 5000, 5001, 9]
    text = compact_ranges(ids)
    assert text == "0-2,7,9,5000-5001"
    assert expand_ranges(text) == sorted(ids)


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../x.png", "a/../../b", "C:/x", "a\\b", "a//b", "x\x00"]
)
def test_unsafe_member_names_rejected(name: str) -> None:
    with pytest.raises(UnsafeMemberError):
        check_member_name(name)


def test_safe_member_names_pass() -> None:
    check_member_name("rgb_0000000.png")
    check_member_name("SynthHuman/rgb_0000000.png")


def _zip(
    options: SynthOptions = SynthOptions(),  # noqa: B008
    overrides: dict[str, bytes | None] | None = None,
    ids: tuple[int, ...] = (0, 1),
) -> bytes:
    buffer = io.BytesIO()
    write_part(buffer, ids, options, overrides or {})
    return buffer.getvalue()


@pytest.mark.parametrize(
    "options",
    [
        SynthOptions(),
        SynthOptions(zip64=True),
        SynthOptions(compression="deflated"),
        SynthOptions(folder="SynthHuman", zip64=True),
    ],
)
def test_check_zip_accepts_good_parts(options: SynthOptions) -> None:
    import hashlib

    data = _zip(options)
    check = check_zip(io.BytesIO(data), len(data))
    assert check.ok, check.problems
    assert check.sha256 == hashlib.sha256(data).hexdigest()
    assert check.member_count == 10 and check.sample_ids == (0, 1)
    assert check.scenario_counts == {"face": 2}


def test_check_zip_names_the_broken_member(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    path.write_bytes(_zip(SynthOptions(compression="deflated")))
    flip_byte(path, member_data_offset(path, "depth_0000001.exr") + 10)
    data = path.read_bytes()
    check = check_zip(io.BytesIO(data), len(data))
    assert [p.member for p in check.problems] == ["depth_0000001.exr"]


def test_check_zip_member_set_problems() -> None:
    data = _zip(overrides={"cam_0000001.txt": None, "notes.txt": b"x", "../evil.png": b"y"})
    problems = {
        (p.member, p.problem.split(" ")[0])
        for p in check_zip(io.BytesIO(data), len(data), quick=True).problems
    }
    assert ("cam_0000001.txt", "missing") in problems
    assert ("notes.txt", "unexpected") in problems
    assert any(m == "../evil.png" for m, _ in problems)


def test_check_zip_truncated() -> None:
    data = _zip()[:-100]
    check = check_zip(io.BytesIO(data), len(data))
    assert not check.ok and "end-of-central-directory" in check.problems[0].problem


def test_retry_delay_full_jitter_and_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    delays = [policy.delay(5) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays) and max(delays) > 4.0 and min(delays) < 4.0
    assert all(policy.delay(1, retry_after=3) >= 3 for _ in range(20))
    assert policy.delay(1, retry_after=10_000) <= policy.max_retry_after


def test_plan_actions_and_dry_run_numbers(tmp_path: Path, host: LocalHost, served: Path) -> None:
    dest = tmp_path / "dest"
    settings = MirrorSettings(
        dest=str(dest), parts=PARTS[:3], base_url=host.base_url, segment_size=SEGMENT, policy=FAST
    )
    plan = plan_mirror(settings)
    sizes = {p: (served / p).stat().st_size for p in PARTS[:3]}
    assert [p.action for p in plan.parts] == ["fetch"] * 3
    assert plan.bytes_to_fetch == sum(sizes.values()) and plan.bytes_present == 0
    assert plan.disk_needed == sum(sizes.values())
    assert mirror(MirrorSettings(**{**settings.__dict__, "parts": PARTS[:1]})).failed == ()
    # A partial download of part 1 (half its segments done), part 2 copied in by hand.
    dest.joinpath(PARTS[2]).write_bytes((served / PARTS[2]).read_bytes())
    part, state_path = part_paths(dest / PARTS[1])
    state = PartState(
        url=host.url(PARTS[1]),
        size=sizes[PARTS[1]],
        etag=host.etag(PARTS[1]),
        last_modified=None,
        content_md5=None,
        segments=plan_segments(sizes[PARTS[1]], 4, SEGMENT),
    )
    state.segments[0].done = state.segments[0].length
    part.write_bytes(b"\0" * sizes[PARTS[1]])
    save_state(state_path, state)
    again = plan_mirror(settings)
    actions = {p.name: (p.action, p.present, p.to_fetch) for p in again.parts}
    assert actions[PARTS[0]] == ("skip", sizes[PARTS[0]], 0)
    assert actions[PARTS[1]] == ("resume", SEGMENT, sizes[PARTS[1]] - SEGMENT)
    assert actions[PARTS[2]] == ("adopt", sizes[PARTS[2]], 0)
    text = again.render()
    assert "resume" in text and "disk needed" in text
    # A changed file on the server is planned as a fresh fetch.
    host.replace(PARTS[0], (served / PARTS[0]).read_bytes())
    assert plan_mirror(settings).parts[0].action == "fetch"


def test_missing_part_is_planned_as_error(tmp_path: Path, host: LocalHost) -> None:
    settings = MirrorSettings(
        dest=str(tmp_path / "d"),
        parts=("SynthHuman_0042.zip",),
        base_url=host.base_url,
        policy=FAST,
    )
    (part,) = plan_mirror(settings).parts
    assert part.action == "error" and "404" in part.reason


def test_free_space_refusal(tmp_path: Path, host: LocalHost) -> None:
    settings = MirrorSettings(dest=str(tmp_path / "d"), parts=PARTS[:2], base_url=host.base_url)
    plan = plan_mirror(settings)
    tight = MirrorPlan(
        settings=settings,
        parts=plan.parts,
        work_dir=plan.work_dir,
        disk_needed=plan.disk_needed,
        free_bytes=plan.disk_needed - 1,
    )
    with pytest.raises(InsufficientSpaceError, match="not enough free space"):
        check_space(tight)
    check_space(plan)


def test_lock_keeps_a_second_run_out(tmp_path: Path) -> None:
    with (
        hold_lock(tmp_path / ".mirror.lock", "dest"),
        pytest.raises(LockedError, match="another mirror run"),
        hold_lock(tmp_path / ".mirror.lock", "dest"),
    ):
        pass
    with hold_lock(tmp_path / ".mirror.lock", "dest"):  # released
        pass


def test_manifest_contents(tmp_path: Path, host: LocalHost, served: Path) -> None:
    dest = tmp_path / "d"
    report = mirror(
        MirrorSettings(
            dest=str(dest),
            parts=PARTS[:2],
            base_url=host.base_url,
            segment_size=SEGMENT,
            policy=FAST,
        )
    )
    assert not report.failed
    manifest = json.loads((dest / "manifest.json").read_text())
    import hashlib

    for i, name in enumerate(PARTS[:2]):
        record = manifest["parts"][name]
        data = (served / name).read_bytes()
        assert record["size"] == len(data)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["etag"] == host.etag(name)
        assert record["member_count"] == 10
        assert record["sample_ids"] == f"{i * 5000}-{i * 5000 + 1}"
        assert record["scenario_counts"] == {"face": 2}
        assert record["verified_at"]
