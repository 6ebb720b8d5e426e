"""The command-line edge shared by every stage: logging set-up and user-facing errors."""

import ctypes
import logging
import os
import signal
import sys
from typing import Callable


PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class StageError(Exception):
    """Bad input a user can fix: the message says what was wrong and what is allowed."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a StageError ends it with its message and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # SIGTERM (a cancelled flow run, a stopped container) unwinds like an error: an open
    # MLflow run ends FAILED, scratch files are removed. SIGKILL cannot be caught: a killed
    # training run stays RUNNING until the next run resumes it.
    signal.signal(signal.SIGTERM, _terminated)
    die_with_parent()
    try:
        main()
    except StageError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(1)


def _terminated(signum, frame) -> None:
    logging.getLogger(__name__).error("terminated (SIGTERM)")
    sys.exit(128 + signum)


def die_with_parent() -> None:
    """Get SIGTERM when the parent process dies (Linux), so that a stage whose `dvc repro` was
    killed stops too rather than training on as an orphan. Safe in a preexec_fn."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)
