"""One search trial in a worker's clone: start from the search's commit, reproduce the stage with
the trial's params, read the objective, save the result as a named DVC experiment and share it.

A worker's clone belongs to its worker: each trial starts from the clone's committed params.yaml
and dvc.lock (a trial killed half way leaves its overrides there), and the workspace lock
(workspace.exclusive) keeps two trials of one clone from running at once.
"""

import csv
import math
import subprocess
from pathlib import Path

import mlflow

from imagepipe.orchestration.dvc_commands import dvc
from imagepipe.tracking.store import configure_tracking

RESET = ("params.yaml", "dvc.lock")


class WrongBaseline(RuntimeError):
    """The worker's clone is not at the commit the search started from."""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


def check_baseline(root: Path, baseline: str) -> None:
    """Trials of one search compare params, so they must run the same code and data."""
    here = head(root)
    if here != baseline:
        raise WrongBaseline(
            f"this worker's clone {root} is at commit {here[:12]}, the search started from {baseline[:12]}: "
            f"run `git fetch && git checkout {baseline[:12]}` there (and `dvc pull`), or start the search "
            "from the commit the workers are at"
        )


def reset_to_baseline(root: Path) -> None:
    """params.yaml and dvc.lock as committed; outputs are left to DVC, which checks their hashes."""
    tracked = [name for name in RESET if (root / name).exists() and git(root, "ls-files", name)]
    if tracked:
        git(root, "checkout", "HEAD", "--", *tracked)


def experiment_name(study: str, number: int) -> str:
    return f"{study}-trial-{number}"


def objective_value(history: Path, monitor: str, direction: str) -> float:
    """The best epoch's monitored value in the stage's history CSV: the checkpoint the stage kept."""
    if not history.is_file():
        raise FileNotFoundError(f"the stage wrote no history at {history} (search.yaml: the search's `history`)")
    with history.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    values = [float(row[monitor]) for row in rows if row.get(monitor) not in (None, "")]
    values = [value for value in values if math.isfinite(value)]
    if not values:
        columns = sorted(rows[0]) if rows else []
        raise ValueError(f"{history} has no finite '{monitor}' values; its columns are {columns}")
    return max(values) if direction == "maximize" else min(values)


def save_experiment(root: Path, name: str, message: str, stages: list[str]) -> str:
    """`dvc exp save` of the workspace as experiment `name`, caching the outputs of the trial's
    stages only (the clone need not hold every stage's outputs); returns its commit."""
    dvc(root, "exp", "save", "--force", "--name", name, "--message", message, *stages)
    refs = git(root, "for-each-ref", "refs/exps", "--format=%(objectname) %(refname)").splitlines()
    return next(ref.split()[0] for ref in refs if ref.endswith(f"/{name}"))


def share_experiment(root: Path, name: str) -> str:
    """`dvc exp push origin name` (the experiment's commit to the Git remote, its outputs to the
    default DVC remote) when the clone has an `origin`; says where it went."""
    if "origin" not in git(root, "remote").split():
        return "kept in this clone (it has no Git remote `origin`)"
    if has_dvc_remote(root):
        dvc(root, "exp", "push", "origin", name)
        return "pushed to origin, its outputs to the DVC remote"
    dvc(root, "exp", "push", "--no-cache", "origin", name)
    return "pushed to origin (outputs kept in this clone's cache: no default DVC remote)"


def has_dvc_remote(root: Path) -> bool:
    """Whether the clone has a default DVC remote (`dvc remote default` fails when it has none)."""
    try:
        return bool(dvc(root, "remote", "default").strip())
    except RuntimeError:
        return False


def mark_pruned(run_id: str) -> None:
    """The stage ended its pruned run FAILED; a pruned trial is stopped on purpose."""
    mlflow.MlflowClient().set_terminated(run_id, "KILLED")


def trial_run_id(study: str, number: int) -> str | None:
    """The MLflow run of the trial's stage (tagged by the stage from the trial's context)."""
    configure_tracking()
    runs = mlflow.search_runs(
        filter_string=f"tags.optuna_study = '{study}' and tags.optuna_trial = '{number}'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    return runs[0].info.run_id if runs else None
