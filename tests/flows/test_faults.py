"""Kills under orchestration: a stage killed in a flow run fails it; a flow-run process killed
ends Crashed and takes its stages with it; a worker host that dies leaves a run the heartbeat
automation marks Crashed; two plain `dvc repro` in one workspace do not mix. On the toy DVC
project of test_orchestration (stages that sleep), a real Prefect server and real process
workers."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.flows.test_orchestration import make_toy_repo
from tests.helpers.prefect import BIN, PrefectServer, worker

pytestmark = [pytest.mark.slow, pytest.mark.faults]

# train_a sleeps until released, so that it can be killed mid-run; it stops with its parent,
# as every project stage does (imagepipe.core.cli.run_stage).
SLOW_WORK = """
import os, sys, time
from pathlib import Path
from imagepipe.core.lifecycle import die_with_caller

die_with_caller()
name, out = sys.argv[1], Path(sys.argv[2])
Path("pids").mkdir(exist_ok=True)
Path("pids", name).write_text(str(os.getpid()))
while name == "train_a" and not Path("release").exists():
    time.sleep(0.1)
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"{name}: {Path('params.yaml').read_text()}")
"""


def slow_repo(path: Path) -> Path:
    repo = make_toy_repo(path)
    (repo / "work.py").write_text(SLOW_WORK)
    (repo / ".gitignore").write_text("pids/\nrelease\n")
    return repo


def wait_for_pid(repo: Path, stage: str, timeout: float = 120) -> int:
    path, deadline = repo / "pids" / stage, time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{stage} did not start"
        time.sleep(0.1)
    return int(path.read_text())


def gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def flow_run_process(stage_pid: int, flow_run_id) -> psutil.Process:
    """The stage's furthest ancestor that runs the flow run. Its children (dvc, the shell, the
    stage) inherit PREFECT__FLOW_RUN_ID too, and pids wrap, so the lowest such pid is not it."""
    runs_it = [
        parent
        for parent in psutil.Process(stage_pid).parents()
        if _environ(parent).get("PREFECT__FLOW_RUN_ID") == str(flow_run_id)
    ]
    assert runs_it, f"no process runs flow run {flow_run_id}"
    return runs_it[-1]


def _environ(process: psutil.Process) -> dict[str, str]:
    try:
        return process.environ()
    except psutil.Error:
        return {}


def dvc(repo: Path, *args: str) -> str:
    return subprocess.run([BIN / "dvc", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_a_stage_killed_in_a_flow_run_fails_it_and_a_rerun_completes(prefect_server, tmp_path):
    repo = slow_repo(tmp_path / "toy")
    prefect_server.deploy(repo)
    with worker(prefect_server, "gpu", repo):
        flow_run = prefect_server.start("pipeline/full-run")
        os.kill(wait_for_pid(repo, "train_a"), signal.SIGKILL)
        failed = prefect_server.wait(flow_run, timeout=300)
        assert failed.state.is_failed(), failed.state
        assert "stage 'train_a' failed (exit code" in prefect_server.logs(failed)
        (repo / "release").touch()
        rerun = prefect_server.run("pipeline/full-run")
    assert rerun.state.is_completed(), prefect_server.logs(rerun)
    assert "up to date" in dvc(repo, "status")


def test_a_killed_flow_run_ends_crashed_and_takes_its_stages_with_it(prefect_server, tmp_path):
    repo = slow_repo(tmp_path / "toy")
    prefect_server.deploy(repo)
    # SHELL=/bin/sh, as under systemd or cron: DVC then runs the stage under dash, which stays
    # between dvc and the stage (bash would exec the stage in its place).
    with worker(prefect_server, "gpu", repo, {"SHELL": "/bin/sh"}):
        flow_run = prefect_server.start("pipeline/full-run")
        stage = wait_for_pid(repo, "train_a")
        flow_run_process(stage, flow_run.id).kill()
        crashed = prefect_server.wait(flow_run, timeout=120)
        assert crashed.state.is_crashed(), crashed.state
        assert gone(stage), "the stage outlived its flow run"
        (repo / "release").touch()
        rerun = prefect_server.run("pipeline/full-run")
    assert rerun.state.is_completed(), prefect_server.logs(rerun)
    assert "up to date" in dvc(repo, "status")


def test_a_flow_run_whose_worker_host_dies_is_crashed_by_the_heartbeat_automation(prefect_server, tmp_path):
    """The worker, the flow-run process, dvc and the stage all SIGKILLed at once, as when the
    host loses power: nothing reports the end. flows/automations.yaml marks the run Crashed once
    its heartbeats stop, which frees full-run's concurrency slot (limit 1) for the next run."""
    repo = slow_repo(tmp_path / "toy")
    prefect_server.deploy(repo)
    heartbeats = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}  # the least Prefect allows
    with heartbeat_automation(prefect_server, tmp_path, within=45):
        with worker(prefect_server, "gpu", repo, heartbeats) as host:
            flow_run = prefect_server.start("pipeline/full-run")
            wait_for_pid(repo, "train_a")
            for process in [*psutil.Process(host.pid).children(recursive=True), psutil.Process(host.pid)]:
                process.kill()
        time.sleep(5)
        assert prefect_server.read(flow_run).state.is_running(), "something else ended the run: the test proves nothing"
        crashed = prefect_server.wait(flow_run, timeout=180)
        assert crashed.state.is_crashed() and "No heartbeat" in crashed.state.message, crashed.state
        (repo / "release").touch()
        with worker(prefect_server, "gpu", repo, heartbeats):
            rerun = prefect_server.run("pipeline/full-run", timeout=300)
    assert rerun.state.is_completed(), prefect_server.logs(rerun)


@contextlib.contextmanager
def heartbeat_automation(server: PrefectServer, tmp_path: Path, within: int):
    """flows/automations.yaml created as the README says, its window shortened to fit a test; deleted
    afterwards so that it cannot crash the slower flow runs of later tests."""
    automations = yaml.safe_load((Path(__file__).parents[2] / "flows/automations.yaml").read_text())
    (automation,) = automations["automations"]
    automation["trigger"]["within"] = within
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump(automations))
    server.cli(tmp_path, "automation", "create", "--from-file", str(path))
    try:
        yield
    finally:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            for created in client.read_automations_by_name(automation["name"]):
                client.delete_automation(created.id)


def test_two_dvc_repro_in_one_workspace_one_waits_or_fails_clearly(tmp_path):
    repo = slow_repo(tmp_path / "toy")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    first = subprocess.Popen(
        [BIN / "dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for_pid(repo, "train_a")
    second = subprocess.run([BIN / "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert "Unable to acquire lock" in second.stderr + second.stdout or "is busy" in second.stderr + second.stdout, (
        second
    )
    (repo / "release").touch()
    assert first.wait(timeout=120) == 0, first.stdout.read()
    assert "up to date" in dvc(repo, "status")
    assert (repo / "metrics/report.txt").exists()
