"""Where a run came from: git commit (MLflow's `mlflow.source.git.commit` tag) and dirty flag, DVC
hashes of its data, Prefect flow run, package versions."""

import os
import subprocess
from pathlib import Path

import yaml
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

from imagepipe.core.redact import redact
from imagepipe.search.context import TrialContext

# MLflow has no tag for uncommitted changes: "true" when tracked files differ from the commit.
GIT_DIRTY = "git_dirty"


def provenance(stage: str, data_paths: list[str]) -> dict[str, str]:
    """Tags tying a run to its code (git commit, and whether tracked files had uncommitted
    changes) and data (the DVC hash recorded in dvc.lock); no git tags outside a git repository.

    The commit goes in MLflow's own tag, which its UI shows as the run's source version. MLflow
    sets that tag only when it creates a run, from the repository holding `sys.argv[0]`: for
    `python -m stages.<stage>` that is this working directory's HEAD, but a resumed run keeps the
    commit it started on, and a run started from `python -c`, a notebook or a test gets none or
    another repository's. So it is set here, for every start, from the working directory."""
    tags = {"stage": stage}
    commit = _git("rev-parse", "HEAD")
    if commit:
        tags[MLFLOW_GIT_COMMIT] = commit
        tags[GIT_DIRTY] = str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower()
    for path in data_paths:
        tags[f"dvc_hash:{path}"] = dvc_hash(path) or "untracked"
    return tags | orchestration_tags()


def orchestration_tags() -> dict[str, str]:
    """The Prefect flow run that started this stage and its params overrides, when one did;
    redacted, as an override of a source may hold credentials. In a search trial, also the
    study, the trial, its DVC experiment and the search's parent run."""
    variables = {
        "prefect_flow_run_id": "IMAGEPIPE_FLOW_RUN_ID",
        "param_overrides": "IMAGEPIPE_PARAM_OVERRIDES",
    }
    tags = {tag: redact(os.environ[variable]) for tag, variable in variables.items() if os.environ.get(variable)}
    trial = TrialContext.from_env()
    return tags | (trial.tags() if trial else {})


def dvc_hash(path: str, lock: Path = Path("dvc.lock")) -> str | None:
    if not lock.exists():
        return None
    for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out.get("md5")
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def package_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {package: version(package) for package in ("tensorflow", "keras", "mlflow", "numpy")}
