"""The pull step of every deployment: run in this host's clone of the project.

Each worker host has its own clone (with its own DVC cache and virtual environment) and says
where it is in `IMAGEPIPE_WORKSPACE` before `prefect worker start`. The path is read when the
flow run starts on the worker, not when `prefect deploy` runs, so one deployment serves hosts
whose clones live in different places.
"""

import os
from pathlib import Path


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
