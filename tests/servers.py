"""Servers the tests start on loopback (Prefect, MLflow, `mlflow models serve`): ports, health, stopping."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


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
