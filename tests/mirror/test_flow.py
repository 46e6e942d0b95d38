"""The mirror flow is thin and honest: a failed part ends the run Failed (with the
report), and ``parts`` accepts what ``--param parts=59`` gives (an int)."""

from __future__ import annotations

from pathlib import Path

from mirror_helpers import PARTS, same_bytes

from david_data.synth.host import LocalHost


def test_a_failed_part_ends_the_flow_run_failed(
    prefect_harness: None, tmp_path: Path, served: Path, host: LocalHost
) -> None:
    from david_data.flows._executor import report_of_state
    from david_data.flows.mirror import mirror_flow

    (served / PARTS[3]).unlink()
    state = mirror_flow(
        dest=str(tmp_path / "bad"), parts="0,3", base_url=host.base_url, progress=False,
        return_state=True,
    )  # fmt: skip
    assert state.is_failed()
    report = report_of_state(state)
    assert [o.name for o in report.failed] == [PARTS[3]] and "404" in report.failed[0].error
    assert same_bytes(served / PARTS[0], tmp_path / "bad" / PARTS[0])

    state = mirror_flow(
        dest=str(tmp_path / "good"), parts=2, base_url=host.base_url, progress=False,
        return_state=True,
    )  # fmt: skip
    assert state.is_completed()
    assert [o.status for o in report_of_state(state).outcomes] == ["ok"]
    assert same_bytes(served / PARTS[2], tmp_path / "good" / PARTS[2])


def test_a_flow_run_started_by_the_cli_plans_once(
    prefect_harness: None, tmp_path: Path, served: Path, host: LocalHost
) -> None:
    """Issue 16: with ``--prefect`` the flow run plans and the CLI only checks the
    settings, so the host sees the requests of one plan, as for a run in this process
    (the CLI used to plan too: every HEAD twice)."""
    from david_data.cli import main

    command = ["mirror", "--parts", "0,2", "--base-url", host.base_url, "--no-progress"]
    assert main([*command, str(tmp_path / "here")]) == 0
    here = [len(host.stats.requests_for(p, "HEAD")) for p in (PARTS[0], PARTS[2])]
    host.reset_stats()
    assert main([*command, str(tmp_path / "flow"), "--prefect"]) == 0
    as_flow_run = [len(host.stats.requests_for(p, "HEAD")) for p in (PARTS[0], PARTS[2])]
    assert as_flow_run == here and min(here) >= 1
    assert same_bytes(served / PARTS[2], tmp_path / "flow" / PARTS[2])
