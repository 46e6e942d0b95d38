"""``david-data infer`` end to end (in-process by default), and the same job as a Prefect
flow run: its artifact, and a Failed state when an input failed."""

from __future__ import annotations

from pathlib import Path

from batch_helpers import cli, write_images

from david_data.infer.results import read_results


def test_cli_infer_runs_resumes_and_reports_failures(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    write_images(folder, 16)
    common = [
        "--model-path",
        str(models["multitask"]),
        "--task",
        "multitask",
        "--no-progress",
        "--images-per-task",
        "8",
    ]
    first = cli(["infer", str(folder), str(out), *common])
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("16 done, 0 failed") == 1  # the summary, printed once
    assert "Prefect" not in first.stdout + first.stderr  # no flow run unless asked for
    assert read_results(str(out)).num_rows == 16

    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    dry = cli(["infer", str(folder), str(out), *common, "--dry-run"])
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "already done: 16; to do: 1" in dry.stdout
    second = cli(["infer", str(folder), str(out), *common])
    assert second.returncode == 1, second.stderr[-3000:]
    assert (
        "0 done, 1 failed, 16 already done" in second.stdout
        and "FAILED broken.png" in second.stdout
    )
    runs = read_results(str(out)).to_pylist()
    assert len(runs) == 17 and [r["input"] for r in runs if r["status"] == "failed"] == [
        "broken.png"
    ]

    bad_usage = cli(
        ["infer", str(folder), str(out), "--model-path", str(models["multitask"]), "--query", "x"]
    )
    assert bad_usage.returncode == 2 and "--from-store" in bad_usage.stderr


def test_flow_run_publishes_the_report_and_fails_when_an_input_failed(
    tmp_path: Path, models: dict[str, Path], prefect_harness: None
) -> None:
    from prefect.artifacts import Artifact

    from david_data.flows._executor import report_of_state
    from david_data.flows.infer import infer_flow

    folder, out = tmp_path / "in", tmp_path / "out"
    write_images(folder, 6)
    (folder / "broken.jpg").write_bytes(b"not a picture")
    state = infer_flow(
        input=str(folder),
        output=str(out),
        model_path=str(models["foreground"]),
        images_per_task="4",  # deployment parameters arrive as text
        return_state=True,
    )
    assert state.is_failed(), state
    report = report_of_state(state)
    assert (report.ok, report.failed, report.task) == (6, 1, "foreground")
    assert "FAILED broken.jpg" in (state.message or "")
    artifact = Artifact.get("infer-run")
    assert artifact is not None and "| failed | 1 |" in str(artifact.data)

    (folder / "broken.jpg").unlink()
    again = infer_flow(input=str(folder), output=str(out), model_path=str(models["foreground"]),
                       return_state=True)
    assert again.is_completed() and report_of_state(again).skipped == 6


def test_cli_with_a_prefect_api_runs_a_flow_and_prints_the_summary_once(
    tmp_path: Path, models: dict[str, Path], prefect_env: dict[str, str]
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    write_images(folder, 4)
    proc = cli(
        ["infer", str(folder), str(out), "--model-path", str(models["foreground"]),
         "--no-progress", "--workers", "1"],
        env={"PREFECT_API_URL": prefect_env["PREFECT_API_URL"]},  # a configured API: a flow run
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Finished in state Completed" in proc.stderr  # it ran as a flow run
    assert proc.stdout.count("4 input(s): 4 done, 0 failed") == 1
    assert len(list(out.glob("**/*.done"))) == 4
