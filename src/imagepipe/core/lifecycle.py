"""Process lifecycle: a stage stops with the `dvc` (or flow run) that started it, and unwinds on SIGTERM."""

import ctypes
import logging
import os
import signal
import sys
import threading
import time

import psutil

PR_SET_PDEATHSIG = 1  # linux/prctl.h
SHELLS = {"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish"}
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def stop_on_sigterm() -> None:
    """SIGTERM (a cancelled flow run, a stopped container) unwinds like an error: an open MLflow
    run ends FAILED, scratch files are removed. SIGKILL cannot be caught: a killed training run
    stays RUNNING until the next run resumes it."""
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum, frame) -> None:
    # Once: the parent's death may send SIGTERM again while the first one unwinds.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.getLogger(__name__).error("terminated (SIGTERM)")
    sys.exit(128 + signum)


def die_with_parent() -> None:
    """Get SIGTERM when the parent process dies (Linux), so that a stage whose `dvc repro` was
    killed stops too rather than training on as an orphan. Safe in a preexec_fn."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


def die_with_caller() -> None:
    """die_with_parent, and also stop when the process that ran the shell we run in dies.

    DVC runs a stage's cmd as `$SHELL -c cmd`. bash execs a lone command, so the stage's parent
    is `dvc`; dash (/bin/sh on Debian, what DVC uses when SHELL is unset, as under systemd, cron
    or CI) does not, and stays as the parent after `dvc` is killed. Then a thread watches that
    shell and sends this process SIGTERM once the shell has lost its own parent.
    """
    die_with_parent()
    try:
        shell = psutil.Process(os.getppid())
        caller = shell.ppid()
        running_a_command = _is_shell_running_a_command(shell)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return  # the shell is gone (die_with_parent stops us) or not ours to read: nothing to watch
    if running_a_command:
        threading.Thread(
            target=_stop_when_orphaned,
            args=(shell, caller),
            name="die-with-caller",
            daemon=True,
        ).start()


def _is_shell_running_a_command(process: psutil.Process) -> bool:
    argv = process.cmdline()
    return bool(argv) and os.path.basename(argv[0]).lstrip("-") in SHELLS and "-c" in argv[1:]


def _parent_of(process: psutil.Process) -> int | None:
    """Its parent's pid; None once it has exited (psutil also checks that its pid was not reused)."""
    try:
        return process.ppid()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _stop_when_orphaned(shell: psutil.Process, caller: int, interval: float = 1.0) -> None:
    while _parent_of(shell) == caller:
        time.sleep(interval)
    os.kill(os.getpid(), signal.SIGTERM)
