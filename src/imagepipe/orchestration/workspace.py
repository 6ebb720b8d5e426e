"""The pull step of every deployment: run in this host's clone of the project.

Each worker host has its own clone (with its own DVC cache and virtual environment) and says
where it is in `IMAGEPIPE_WORKSPACE` before `prefect worker start`. The path is read when the
flow run starts on the worker, not when `prefect deploy` runs, so one deployment serves hosts
whose clones live in different places.
"""

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


def enter_workspace() -> dict[str, str]:
    """Change into `$IMAGEPIPE_WORKSPACE`; Prefect's pull steps return their outputs as a dict."""
    workspace = os.environ.get("IMAGEPIPE_WORKSPACE")
    if not workspace:
        raise RuntimeError(
            "IMAGEPIPE_WORKSPACE is not set on this worker: export it as the path of this host's clone "
            "of the project before `prefect worker start`"
        )
    directory = Path(workspace).expanduser().resolve()
    if not (directory / "dvc.yaml").is_file():
        raise RuntimeError(f"IMAGEPIPE_WORKSPACE={workspace} has no dvc.yaml: point it at a clone of the project")
    os.chdir(directory)
    return {"directory": str(directory)}


@contextmanager
def exclusive(root: Path, logger: logging.Logger | logging.LoggerAdapter) -> Iterator[None]:
    """Hold the workspace for one flow run at a time; a second run waits for the first.

    Two deployments (the nightly retrain and an on-demand run) can reach the same worker at
    once. Their stages would race for the same outputs, so the later run waits here and then
    finds them up to date. An OS file lock is released when its process dies, so a crashed run
    never leaves the workspace locked.
    """
    path = root / ".dvc" / "tmp" / "imagepipe-flow.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another flow run is using %s; waiting for it to finish", root)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
