"""Where a run came from: git commit, DVC hashes of its data, Prefect flow run, package versions."""

import os
import subprocess
from pathlib import Path

import yaml

from imagepipe.core.redact import redact
from imagepipe.search.context import TrialContext


def provenance(stage: str, data_paths: list[str]) -> dict[str, str]:
    """Tags tying a run to its code (git commit) and data (the DVC hash recorded in dvc.lock)."""
    tags = {"stage": stage, "git_commit": _git("rev-parse", "HEAD") or "unknown"}
    tags["git_dirty"] = str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower()
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
