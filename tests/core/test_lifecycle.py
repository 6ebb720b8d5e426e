"""A stage stops when whatever ran it dies, whichever shell DVC ran its cmd in."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from imagepipe.core.lifecycle import _is_shell_running_a_command, _parent_of

ROOT = Path(__file__).parents[2]
STAGE = (
    "from imagepipe.core.lifecycle import die_with_caller; import time; "
    "die_with_caller(); print('ready', flush=True); time.sleep(600)"
)
CALLER = "import subprocess, sys; subprocess.run(sys.argv[1:])"  # dvc, as far as the stage can tell


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_stage_run_through_a_shell_stops_when_its_caller_is_killed(shell, tmp_path):
    command = f'{sys.executable} -c "{STAGE}" > {tmp_path / "stage.log"}'
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, shell, "-c", command], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    stage = wait_for_stage(caller, tmp_path / "stage.log")
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    stage.wait(timeout=10)  # raises TimeoutExpired if the stage trains on as an orphan


def test_a_stage_run_from_an_interactive_shell_outlives_that_shells_parent(tmp_path):
    """Only a shell running a command (`sh -c`) is looked through: `nohup dvc repro &` from a
    terminal that then closes keeps running, and so does a stage started by hand."""
    command = f'{sys.executable} -c "{STAGE}" > {tmp_path / "stage.log"}'
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, "/bin/bash", "-i"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    caller.stdin.write(command + "\n")
    caller.stdin.flush()
    stage = wait_for_stage(caller, tmp_path / "stage.log")
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    with pytest.raises(psutil.TimeoutExpired):
        stage.wait(timeout=3)
    stage.kill()


def wait_for_stage(caller: subprocess.Popen, log: Path) -> psutil.Process:
    deadline = time.monotonic() + 60
    while not (log.exists() and "ready" in log.read_text()):
        assert caller.poll() is None and time.monotonic() < deadline, "the stage did not start"
        time.sleep(0.05)
    (stage,) = [
        child
        for child in psutil.Process(caller.pid).children(recursive=True)
        if child.cmdline()[:2] == [sys.executable, "-c"]
    ]
    return stage


def test_a_shell_is_recognised_only_while_it_runs_a_command():
    # `; :` keeps sh from exec-ing sleep, so the shell itself is what runs.
    running = subprocess.Popen(["/bin/sh", "-c", "sleep 30; :"])
    interactive = subprocess.Popen(["/bin/sh", "-i"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert _is_shell_running_a_command(psutil.Process(running.pid))
        assert not _is_shell_running_a_command(psutil.Process(interactive.pid))
        assert not _is_shell_running_a_command(psutil.Process())  # python, not a shell
    finally:
        running.kill()
        interactive.kill()
        running.wait()
        interactive.wait()


def test_a_shell_that_exits_mid_watch_counts_as_orphaned():
    """The watcher reads the shell's parent once a second: a shell that has exited (and been
    reaped) by then has no parent, so the stage stops, rather than the watcher failing."""
    shell = subprocess.Popen(["/bin/sh", "-c", "sleep 30; :"])
    process = psutil.Process(shell.pid)
    assert _parent_of(process) == os.getpid()
    shell.kill()
    shell.wait()
    assert _parent_of(process) is None
