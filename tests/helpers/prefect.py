"""A Prefect server's client side for the tests (deploy, run, read), process workers and an MLflow server."""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.helpers.servers import ServerLog, free_port, logged_process, wait_until_up

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    home: Path
    log: ServerLog

    @property
    def env(self) -> dict[str, str]:
        """The environment for Prefect commands and workers talking to this server."""
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }

    def cli(self, cwd: Path, *args: str) -> str:
        result = subprocess.run(["prefect", *args], cwd=cwd, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def deploy(self, repo: Path, keep_schedules: bool = False, keep_triggers: bool = False) -> None:
        """`prefect deploy --all` of repo's prefect.yaml. Unless keep_schedules, every schedule
        on the server is paused afterwards, so that a test triggering runs by hand never races
        a cron time (02:00 UTC) that falls while its worker is up. Unless keep_triggers, the
        automations that deployments' triggers create are paused: the session shares one server,
        and a Drifted score run in one test would otherwise start a `nightly-retrain` run that
        a later test's worker picks up in its own repo."""
        self.cli(repo, "--no-prompt", "deploy", "--all")
        if not keep_schedules:
            self.cli(repo, "--no-prompt", "deployment", "schedule", "pause", "--all")
            self.delete_scheduled_runs()
        if not keep_triggers:
            self.pause_automations()

    def delete_scheduled_runs(self) -> None:
        """The runs the scheduler made before the schedules were paused: an hourly cron time (the
        score-new-images deployment) may fall between `prefect deploy` and the pause."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            scheduled = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            for flow_run in client.read_flow_runs(flow_run_filter=FlowRunFilter(state=scheduled)):
                if flow_run.auto_scheduled:
                    client.delete_flow_run(flow_run.id)

    def pause_automations(self) -> None:
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            for automation in client.read_automations():
                if automation.enabled:
                    client.pause_automation(automation.id)

    def flow_runs(self, deployment: str, *states: StateType) -> list[FlowRun]:
        """The flow runs of a deployment ("flow/name") in the given states (any state if none)."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            deployment_id = client.read_deployment_by_name(deployment).id
            state = FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states))) if states else None
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]), state=state
                )
            )

    def run(self, deployment: str, parameters: dict | None = None, timeout: float = 900) -> FlowRun:
        """Trigger a deployment run and wait for it to end, as `prefect deployment run --watch` does."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            return run_deployment(deployment, parameters=parameters or {}, timeout=timeout, poll_interval=1)

    def start(self, deployment: str, parameters: dict | None = None) -> FlowRun:
        """Trigger a deployment run without waiting for it."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            return run_deployment(deployment, parameters=parameters or {}, timeout=0)

    def read(self, flow_run: FlowRun) -> FlowRun:
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            return client.read_flow_run(flow_run.id)

    def wait(self, flow_run: FlowRun, timeout: float = 900) -> FlowRun:
        """Poll a flow run until it reaches a final state."""
        deadline = time.monotonic() + timeout
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                flow_run = client.read_flow_run(flow_run.id)
                if flow_run.state and flow_run.state.is_final():
                    return flow_run
                time.sleep(1)
        raise AssertionError(f"flow run {flow_run.name} not finished after {timeout} s: {flow_run.state}")

    def task_runs(self, flow_run: FlowRun) -> dict[str, TaskRun]:
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
        return {run.name: run for run in runs}

    def logs(self, flow_run: FlowRun) -> str:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
        return "\n".join(log.message for log in logs)


def assert_listens_on_loopback_only(port: int) -> None:
    """Every socket listening on port is bound to 127.0.0.1: no other host can reach the server."""
    listening = psutil.net_connections(kind="inet")
    addresses = {conn.laddr.ip for conn in listening if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port}
    assert addresses == {"127.0.0.1"}, f"port {port} listens on {sorted(addresses)}; expected 127.0.0.1 only"


@contextlib.contextmanager
def started_server(home: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port with PREFECT_HOME=home and the work pools
    `cpu` and `gpu`; stopped afterwards."""
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, ServerLog(home / "server.log"))
    command = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with logged_process(command, home / "server.log", env=server.env) as process:
        wait_until_up(f"{server.api_url}/health", process, home / "server.log")
        assert_listens_on_loopback_only(port)
        for pool in ("cpu", "gpu"):
            server.cli(home, "work-pool", "create", pool, "--type", "process", "--overwrite")
        yield server


@contextlib.contextmanager
def worker(
    server: PrefectServer, pool: str, workspace: Path, extra_env: dict[str, str] | None = None, limit: int | None = None
):
    """`prefect worker start --pool <pool>` on this host, running flows in `workspace` (at most
    limit at once); yields the worker's process."""
    log_path = workspace.parent / f"worker-{pool}-{workspace.name}.log"
    env = {**server.env, "IMAGEPIPE_WORKSPACE": str(workspace), **(extra_env or {})}
    command = ["prefect", "worker", "start", "--pool", pool, "--type", "process"]
    with logged_process([*command, *(["--limit", str(limit)] if limit else [])], log_path, workspace, env) as process:
        yield process


@contextlib.contextmanager
def mlflow_server(directory: Path):
    """`mlflow server` on loopback with a sqlite store and proxied artifacts; yields its URI.
    Leaving the block fails if the server logged a traceback."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{directory / 'mlflow.db'}",
        "--artifacts-destination",
        str(directory / "artifacts"),
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with logged_process(command, directory / "server.log", env=env) as process:
        wait_until_up(f"http://127.0.0.1:{port}/health", process, directory / "server.log")
        assert_listens_on_loopback_only(port)
        yield f"http://127.0.0.1:{port}"
    ServerLog(directory / "server.log").assert_no_tracebacks()
