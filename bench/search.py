"""Hyperparameter search on one worker and on two (issue 16): the same small CNN search, its wall
time on each, trials pruned, the best value found, and what each trial spends outside its
training stage (Prefect, DVC and MLflow bookkeeping).

The workers are two clones on this machine, sharing its cores: the two-worker figure is the
loopback ratio, not that of two machines. Data: scikit-learn's digits (offline), so that the
trials are short and the bookkeeping shows.
"""

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentTaskRunId
from prefect.settings import PREFECT_API_URL, temporary_settings

from bench.pipeline import BIN, clean_clone, environment
from tests.helpers.prefect import mlflow_server, started_server, worker

TRIALS = 8
SEARCH = {
    "stage": "train_cnn",
    "history": "plots/cnn/history.csv",
    "monitor": "val_accuracy",
    "direction": "maximize",
    "trials": TRIALS,
    "sampler": {"kind": "tpe", "seed": 42, "startup_trials": 4},
    "pruner": {"kind": "median", "startup_trials": 3, "warmup_epochs": 1},
    "space": {
        "train_cnn.learning_rate": {"type": "float", "low": 0.0003, "high": 0.03, "log": True},
        "train_cnn.dropout_rate": {"type": "float", "low": 0.0, "high": 0.5},
    },
}
PARAMS = {"data": {"dataset": "digits"}, "families": {"images": [], "scenes": []}}
# Small batches: digits' train split (about 1,300 images) then makes enough steps per epoch.
CNN = {"epochs": 4, "warmup_epochs": 0, "batch_size": 32}


def run(repo: Path, *command: str) -> None:
    subprocess.run(list(command), cwd=repo, env=environment(), check=True, capture_output=True)


def prepared(root: Path, scratch: Path) -> tuple[Path, Path]:
    """Two worker clones of a committed copy of root on digits, its data in a shared DVC remote."""
    origin, remote = scratch / "origin", scratch / "dvc-remote"
    clean_clone(root, origin)
    params = yaml.safe_load((origin / "params.yaml").read_text())
    for section, values in (PARAMS | {"train_cnn": CNN}).items():
        params[section].update(values)
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (origin / "search.yaml").write_text(yaml.safe_dump({"searches": {"bench": SEARCH}}))
    dvc = str(BIN / "dvc")
    run(origin, dvc, "remote", "add", "--default", "shared", str(remote))
    run(origin, dvc, "repro", "preprocess")
    run(origin, dvc, "push")
    run(origin, "git", "add", "-A")
    run(origin, "git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench search")
    clones = []
    for name in ("worker-a", "worker-b"):
        run(scratch, "git", "clone", "-q", str(origin), str(scratch / name))
        run(scratch / name, dvc, "remote", "add", "--local", "--default", "shared", str(remote))
        run(scratch / name, dvc, "pull", "--with-deps", "preprocess")
        clones.append(scratch / name)
    return clones[0], clones[1]


def measure_search(root: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-search-") as directory:
        scratch = Path(directory)
        (scratch / "prefect").mkdir()
        worker_a, worker_b = prepared(root, scratch)
        storage = f"sqlite:///{scratch / 'optuna.db'}"
        with started_server(scratch / "prefect") as server, mlflow_server(scratch / "mlflow") as tracking_uri:
            env = {"MLFLOW_TRACKING_URI": tracking_uri}
            server.deploy(worker_a)
            results = {}
            with worker(server, "cpu", worker_a, env), worker(server, "gpu", worker_a, env, limit=1):
                results["one_worker"] = searched(server, storage, "one")
                with worker(server, "gpu", worker_b, env, limit=1):
                    results["two_workers"] = searched(server, storage, "two")
    one, two = results["one_worker"]["seconds"], results["two_workers"]["seconds"]
    return results | {"speedup": one / two, "trials": TRIALS, "search": SEARCH, "cnn": CNN}


def searched(server, storage: str, study: str) -> dict:
    """One search through the `search/cnn` deployment; its time, trials and bookkeeping."""
    started = time.perf_counter()
    flow_run = server.run("search/cnn", {"name": "bench", "storage_url": storage, "study": study}, timeout=3600)
    seconds = time.perf_counter() - started
    if not flow_run.state.is_completed():
        raise RuntimeError(f"the search {study} ended {flow_run.state.name}: {flow_run.state.message}")
    trials = optuna.load_study(study_name=study, storage=storage).trials
    states = [trial.state.name.lower() for trial in trials]
    completed = [trial.value for trial in trials if trial.value is not None]
    return {
        "seconds": seconds,
        "completed": states.count("complete"),
        "pruned": states.count("pruned"),
        "failed": states.count("fail"),
        "best_value": max(completed) if completed else None,
        "bookkeeping_seconds": bookkeeping(server, flow_run.id),
    }


def bookkeeping(server, search_run_id) -> dict:
    """Per trial: its flow run's duration less its training stage's task run (median, min, max)."""
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        parents = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[search_run_id])))
        trial_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_task_run_id=FlowRunFilterParentTaskRunId(any_=[t.id for t in parents]))
        )
        outside = []
        for trial_run in trial_runs:
            if trial_run.state_name != "Completed" or trial_run.total_run_time is None:
                continue
            tasks = server.task_runs(trial_run)
            stage = tasks.get("train_cnn")
            if stage is not None and stage.total_run_time is not None:
                outside.append(trial_run.total_run_time.total_seconds() - stage.total_run_time.total_seconds())
    if not outside:
        return {}
    return {"median": statistics.median(outside), "min": min(outside), "max": max(outside), "trials": len(outside)}


def render_search(search: dict) -> list[str]:
    one, two = search["one_worker"], search["two_workers"]
    rows = [
        f"| {name} | {run['seconds']:.0f} | {run['completed']} | {run['pruned']} | {run['failed']} | "
        f"{run['best_value']:.4f} | {_spread(run['bookkeeping_seconds'])} |"
        for name, run in (("one worker", one), ("two workers (one machine)", two))
    ]
    overhead = max(run["bookkeeping_seconds"].get("median", 0.0) for run in (one, two))
    return [
        "## Hyperparameter search",
        "",
        f"`{search['command']}` on {search['machine']['cpu']} ({search['machine']['cores']} cores), {search['date']}: "
        f"the search `search/cnn` deployment, {search['trials']} trials of `train_cnn` ({search['cnn']['epochs']} "
        "epochs on scikit-learn's digits, TPE sampler, median pruner) through process workers in clones "
        "of this machine, a shared MLflow server, DVC remote and Optuna storage. Both workers share "
        "this machine's cores, so the two-worker time is the loopback figure, not two machines'. "
        "Bookkeeping: a trial's flow run less its `train_cnn` task (median, min–max).",
        "",
        "| workers | wall s | completed | pruned | failed | best val_accuracy | bookkeeping s per trial |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| two workers ≥ 1.7× faster (two machines) | {search['speedup']:.2f}× on one machine's shared cores | "
        f"{'yes' if search['speedup'] >= 1.7 else 'no'} |",
        f"| bookkeeping ≤ 5 s per trial | {overhead:.1f} s | {'yes' if overhead <= 5 else 'no'} |",
        "",
    ]


def _spread(values: dict) -> str:
    if not values:
        return "–"
    return f"{values['median']:.1f} ({values['min']:.1f}–{values['max']:.1f})"
