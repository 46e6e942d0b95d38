"""browse from the command line (exit status, one-line errors), as a Prefect flow, and
without runs (ground truth and metadata only); a sample that cannot be read is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browse_stores import RunStore

from david_data.browse import browse
from david_data.browse.images import image_name
from david_data.cli import main


def test_cli_writes_the_report_of_a_query_and_one_run(
    run_store: RunStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "faces"
    sql = "SELECT sample_id FROM samples WHERE scenario = 'face'"
    code = main(
        [
            "browse",
            str(run_store.path),
            "--run",
            "half",
            "--query",
            sql,
            "-o",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"open {out / 'index.html'}" in captured.out
    faces = [s for s in run_store.ids if s < 98040]
    data = (out / "data.js").read_text()
    assert data.count("\n[") == len(faces)
    assert '"name":"half"' in data and '"name":"full"' not in data
    shown = {int(p.name[:7]) for p in (out / "img").rglob("*.*")}
    assert shown == set(faces)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run", "nope"], "nope"),
        (["--query", "SELECT part FROM samples"], "sample_id"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    run_store: RunStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code = main(["browse", str(run_store.path), "-o", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "r").exists()


def test_cli_refuses_a_report_folder_that_is_not_local(
    run_store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["browse", str(run_store.path), "-o", "memory://report"]) == 2
    assert "local path" in capsys.readouterr().err


def test_without_runs_the_page_browses_ground_truth(
    plain_store: tuple[Path, list[int]], tmp_path: Path
) -> None:
    store, ids = plain_store
    result = browse(str(store), str(tmp_path / "r"))
    assert result.failure_count == 0 and result.drawn == len(ids) * 8
    data = (tmp_path / "r" / "data.js").read_text()
    assert '"runs":[]' in data and '"sort":{"column":"sample_id","descending":false}' in data


def test_a_sample_that_cannot_be_read_is_named_and_the_page_still_written(
    plain_store: tuple[Path, list[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ids = plain_store
    broken = tmp_path / "store.zarr"
    shutil.copytree(store, broken)
    lost = ids[4:8]  # one shard of 4 samples (part 25)
    shards = [p for p in (broken / "rgb").rglob("*") if p.is_file() and p.name != "zarr.json"]
    shard = sorted(shards)[1]
    shard.unlink()
    out = tmp_path / "r"
    code = main(["browse", str(broken), "-o", str(out), "--workers", "1", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1
    for sid in lost:
        assert f"sample {sid}:" in printed
        assert not (out / image_name(sid, "rgb", "t")).exists()
    assert (out / "index.html").exists()
    assert (out / image_name(ids[0], "rgb", "t")).exists()


def test_flow_writes_the_same_report(
    run_store: RunStore, tmp_path: Path, prefect_harness: None
) -> None:
    from david_data.flows.browse import browse_flow

    report = browse_flow(
        store_url=str(run_store.path), output=str(tmp_path / "r"), runs=["full"], workers=1
    )
    assert report.failure_count == 0 and report.runs == ("full",)
    assert (tmp_path / "r" / "index.html").exists()
    assert report.drawn == len(run_store.ids) * (8 + 12)


def test_a_stop_leaves_the_page_unwritten_and_a_rerun_finishes(
    plain_store: tuple[Path, list[int]], tmp_path: Path
) -> None:
    from david_data.browse import BrowseSettings, plan_browse, run_browse
    from david_data.engine import ThreadExecutor, exit_code, request_stop, reset_stop

    store, ids = plain_store
    plan = plan_browse(BrowseSettings(store_url=str(store), output=str(tmp_path / "r")))
    executor = ThreadExecutor(1)
    try:
        request_stop()
        report = run_browse(plan, executor)
    finally:
        reset_stop()
        executor.close()
    assert report.interrupted and exit_code(report) == 130
    assert "rerun" in report.summary()
    assert not (tmp_path / "r" / "index.html").exists()
    again = browse(str(store), str(tmp_path / "r"))
    assert not again.interrupted and again.drawn == len(ids) * 8
    assert (tmp_path / "r" / "index.html").exists()
