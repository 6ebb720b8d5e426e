"""Servers the tests start on loopback (Prefect, MLflow, `mlflow models serve`): ports, health,
their logs, stopping."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Tracebacks a server may log with no fault of its own on a machine without the internet. Each
# entry is a pattern that the whole traceback must match; keep the list short and say why.
OFFLINE_NOISE: tuple[re.Pattern, ...] = (
    # Usage telemetry failing to reach its collector (a frame in a module or package named
    # telemetry or analytics, such as mlflow/telemetry/ or prefect/server/services/telemetry.py).
    # The tests and the README turn telemetry off; this is the net for a release whose collector
    # those switches do not cover.
    re.compile(r'File "[^"]*/(telemetry|analytics)[/.][^"]*"'),
    # SQLite's "database is locked": a write that waited past the busy timeout while another
    # held the file, as happens to a Prefect server on SQLite when the machine is loaded (a
    # worker heartbeat, a work queue marked ready). Each is redone by the next heartbeat, poll
    # or service loop; a server shared by many workers belongs on PostgreSQL (docs/orchestration.md).
    # Any other database error still fails the test.
    re.compile(r"sqlite3\.OperationalError\) database is locked|^sqlite3\.OperationalError: database is locked", re.M),
)
TRACEBACK_START = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def tracebacks(text: str) -> list[str]:
    """The tracebacks in a log, each whole up to its exception line; a chained one
    ("During handling of the above exception...") is one traceback with its causes."""
    found, current, ended = [], None, False
    for line in text.splitlines():
        if current is not None and ended and line.strip():
            if not line.startswith(CHAINED):
                found.append("\n".join(current).rstrip())
                current = None
            ended = False
        if current is None:
            if TRACEBACK_START in line:
                current = [line]
            continue
        current.append(line)
        is_frame = line[:1].isspace() or not line.strip() or TRACEBACK_START in line or line.startswith(CHAINED)
        ended = ended or not is_frame
    if current is not None:
        found.append("\n".join(current).rstrip())
    return found


def service_tracebacks(text: str) -> list[str]:
    """The tracebacks of a server's log that are not known offline noise."""
    return [found for found in tracebacks(text) if not any(noise.search(found) for noise in OFFLINE_NOISE)]


class ServerLog:
    """A server's log file, checked in slices: each check fails on the tracebacks written since
    the one before, so that a broken service (the scheduler, say) fails the test during which it
    broke, even when every client call of that test succeeded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checked = 0

    def assert_no_tracebacks(self) -> None:
        with self.path.open("rb") as log:
            log.seek(self.checked)
            new = log.read()
        self.checked += len(new)
        found = service_tracebacks(new.decode(errors="replace"))
        if found:
            raise AssertionError(
                f"{self.path} logged {len(found)} traceback(s) from the server's own services:\n\n" + "\n\n".join(found)
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Poll url until it answers; fail with the server's log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert process.poll() is None, f"{process.args[:3]} exited:\n{log.read_text()}"
            time.sleep(0.5)
    raise AssertionError(f"{url} not up after {timeout} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not ended after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def logged_process(command: list[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None):
    """command started in its own session, stdout and stderr into log_path; stopped on leaving."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)


@contextlib.contextmanager
def served_model(model_uri: str, directory: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`mlflow models serve` for model_uri (this environment's mlflow, cwd directory) on a free
    loopback port; yields its base URL, stops it afterwards and fails if it logged a traceback."""
    port = free_port()
    env = env or os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local", "--host", "127.0.0.1"]
    log_path = directory / "serve.log"
    with logged_process([*command, "--port", str(port)], log_path, directory, env) as server:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, log_path, timeout=90)
        yield f"http://127.0.0.1:{port}"
    ServerLog(log_path).assert_no_tracebacks()
