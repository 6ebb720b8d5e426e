"""Schedules fire by themselves: Prefect's scheduler service creates the runs of prefect.yaml's
cron deployments, and a process worker runs an interval deployment that nobody triggers.

A real server and worker; the toy DVC project of test_orchestration. Issue 11: a package set
whose scheduler failed (SQLAlchemy 2.1) passed every test that triggered runs by hand.
"""

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim
from prefect.client.schemas.objects import FlowRun, StateType

from tests.flows.test_orchestration import ROOT, make_toy_repo
from tests.helpers.prefect import PrefectServer, worker

pytestmark = pytest.mark.slow


def cron_times(cron: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next count times of a cron expression after a moment, in UTC."""
    times = CronSim(cron, after.astimezone(ZoneInfo(timezone)))
    return [next(times).astimezone(UTC) for _ in range(count)]


def wait_for_runs(server: PrefectServer, deployment: str, *states: StateType, timeout: float) -> list[FlowRun]:
    """The deployment's flow runs in these states, as soon as there is one; fails after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runs := server.flow_runs(deployment, *states):
            return runs
        time.sleep(1)
    raise AssertionError(
        f"no {'/'.join(states)} flow run of {deployment} after {timeout} s; server log: {server.log.path}"
    )


def test_every_scheduled_deployment_has_upcoming_runs_at_its_cron_times(prefect_server, tmp_path):
    declared = {
        # The flow's name is its function's (the entrypoint's part after the colon).
        f"{deployment['entrypoint'].split(':')[1]}/{deployment['name']}": deployment["schedules"]
        for deployment in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
        if deployment.get("schedules")
    }
    assert set(declared) == {"pipeline/nightly-retrain", "pipeline/validate-data", "score/score-new-images"}
    repo = make_toy_repo(tmp_path / "repo")
    deployed_at = datetime.now(UTC)
    prefect_server.deploy(repo, keep_schedules=True)
    try:
        for deployment, (schedule,) in declared.items():
            # Within a minute of `prefect deploy`, as the README promises a user.
            runs = wait_for_runs(prefect_server, deployment, StateType.SCHEDULED, timeout=60)
            assert all(run.auto_scheduled for run in runs), f"{deployment}: runs not made by the scheduler"
            upcoming = sorted(run.expected_start_time for run in runs)[:3]
            expected = cron_times(schedule["cron"], schedule["timezone"], deployed_at, 4)
            # The first cron time may pass between the deploy and the scheduler's next loop.
            assert upcoming in (expected[:3], expected[1:]), f"{deployment}: {upcoming} is not {schedule['cron']}"
    finally:
        prefect_server.cli(repo, "--no-prompt", "deployment", "schedule", "pause", "--all")
    for deployment in declared:
        assert prefect_server.flow_runs(deployment, StateType.SCHEDULED) == [], "pausing left scheduled runs"


def test_an_interval_deployment_runs_on_a_worker_with_nobody_triggering_it(prefect_server, tmp_path):
    repo = make_toy_repo(tmp_path / "repo")
    config = yaml.safe_load((repo / "prefect.yaml").read_text())
    # One run every 30 s: time enough for a toy run to end before the next is due.
    config["deployments"] = [
        {
            "name": "every-30-seconds",
            "entrypoint": "flows/pipeline.py:pipeline",
            "parameters": {"targets": ["prepare"]},
            "work_pool": {"name": "cpu"},
            "schedules": [{"interval": 30}],
        }
    ]
    (repo / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    prefect_server.deploy(repo, keep_schedules=True)
    try:
        with worker(prefect_server, "cpu", repo):
            (flow_run,) = wait_for_runs(
                prefect_server,
                "pipeline/every-30-seconds",
                StateType.COMPLETED,
                StateType.FAILED,
                StateType.CRASHED,
                timeout=180,
            )
            prefect_server.cli(repo, "--no-prompt", "deployment", "schedule", "pause", "--all")
    finally:
        prefect_server.cli(repo, "--no-prompt", "deployment", "delete", "pipeline/every-30-seconds")
    assert flow_run.state.is_completed(), prefect_server.logs(flow_run)
    assert flow_run.auto_scheduled, "the run was not created by the scheduler"
    assert (repo / "data/prepared.txt").read_text() == "prepare: size: 3\n"
