"""A hyperparameter search on loopback: two workers in two clones of one origin, a shared MLflow
server, DVC remote and Optuna storage; one worker killed mid-trial; the winner applied with DVC."""

import json
import threading
import time
from pathlib import Path

import mlflow
import optuna
import psutil
import pytest
import yaml

from tests.flows.test_pipeline_flow import artifacts, dvc, git, host, overlap, project_repo
from tests.helpers.prefect import mlflow_server, worker
from tests.test_pipeline import NO_FAMILIES, QUICK

pytestmark = pytest.mark.slow

UP_TO_TRAIN_CNN = ("scan", "download", "validate", "preprocess", "train_cnn")
CNN = {"stage": "train_cnn", "history": "plots/cnn/history.csv", "monitor": "val_accuracy", "direction": "maximize"}
SEARCHES = {
    # Four trials over two workers; the pruner is off so that every trial that runs finishes.
    "pair": CNN
    | {
        "trials": 4,
        "sampler": {"kind": "random", "seed": 5},
        "pruner": {"kind": "none"},
        "stale_after_seconds": 12,
        "space": {"train_cnn.learning_rate": {"type": "float", "low": 0.001, "high": 0.01, "log": True}},
    },
    # params.yaml's learning rate first, then one that learns nothing: the pruner stops it.
    "prune": CNN
    | {
        "trials": 2,
        "sampler": {"kind": "random", "seed": 1},
        "pruner": {"kind": "median", "startup_trials": 1, "warmup_epochs": 0},
        "space": {"train_cnn.learning_rate": {"type": "categorical", "choices": [0.003, 1.0e-7]}},
        "first": [{"train_cnn.learning_rate": 1.0e-7}],
    },
}


def prepared_origin(path: Path, remote: Path) -> Path:
    """The project on digits with its data prepared, committed and pushed to the DVC remote."""
    # Small batches: digits' train split makes enough steps per epoch to learn in the first one.
    cnn = {"epochs": 3, "warmup_epochs": 0, "learning_rate": 0.003, "batch_size": 32}
    origin = project_repo(path, **(QUICK | NO_FAMILIES | {"train_cnn": cnn}))
    (origin / "search.yaml").write_text(yaml.safe_dump({"searches": SEARCHES}))
    # The pipeline up to the searched stage: a clone then holds every output its dvc.lock names,
    # as a user's clone of a project that ran does, so `dvc exp apply` can check them all out.
    pipeline = yaml.safe_load((origin / "dvc.yaml").read_text())
    pipeline["stages"] = {name: pipeline["stages"][name] for name in UP_TO_TRAIN_CNN}
    (origin / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    dvc(origin, "remote", "add", "--default", "shared", str(remote))
    dvc(origin, "repro", "preprocess")
    dvc(origin, "push")
    git(origin, "add", "-A")
    git(origin, "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "data")
    return origin


def clone(origin: Path, path: Path, remote: Path) -> Path:
    repo = host(origin, path, remote)
    dvc(repo, "pull", "--with-deps", "preprocess")
    return repo


def kill_when_running(study: optuna.Study, worker_process, clone: Path) -> threading.Thread:
    """Kill a worker and its flow runs (as a lost host) once a trial of its clone is running."""

    def watch():
        while True:
            running = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING])
            if any(trial.user_attrs.get("worker", "").endswith(str(clone)) for trial in running):
                break
            time.sleep(0.5)
        time.sleep(3)  # into the stage
        for process in [
            *psutil.Process(worker_process.pid).children(recursive=True),
            psutil.Process(worker_process.pid),
        ]:
            process.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def exp_refs(repo: Path) -> set[str]:
    return {line.rsplit("/", 1)[1] for line in git(repo, "ls-remote", "origin", "refs/exps/*").splitlines()}


def test_a_search_shares_trials_between_two_workers_and_loses_only_a_killed_one(prefect_server, tmp_path):
    remote = tmp_path / "dvc-remote"
    origin = prepared_origin(tmp_path / "origin", remote)
    host_a, host_b = (clone(origin, tmp_path / name, remote) for name in ("host-a", "host-b"))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    lock_b = (host_b / "dvc.lock").read_text()
    with mlflow_server(tmp_path / "mlflow") as tracking_uri:
        env = {"MLFLOW_TRACKING_URI": tracking_uri}
        prefect_server.deploy(host_b)
        with (
            worker(prefect_server, "cpu", host_b, env),
            worker(prefect_server, "gpu", host_b, env, limit=1),
            worker(prefect_server, "gpu", host_a, env, limit=1) as worker_a,
        ):
            parameters = {"name": "pair", "storage_url": storage, "study": "pair"}
            started = prefect_server.start("search/cnn", parameters)
            while True:
                try:
                    study = optuna.load_study(study_name="pair", storage=storage)
                    break
                except KeyError:
                    time.sleep(0.5)
            killer = kill_when_running(study, worker_a, host_a)
            searched = prefect_server.wait(started, timeout=600)
            killer.join(timeout=1)
        assert searched.state.is_completed(), prefect_server.logs(searched)
        trials = optuna.load_study(study_name="pair", storage=storage).trials
        states = [trial.state for trial in trials]
        assert states.count(optuna.trial.TrialState.FAIL) == 1 and states.count(optuna.trial.TrialState.COMPLETE) == 3
        lost = next(trial for trial in trials if trial.state == optuna.trial.TrialState.FAIL)
        assert lost.user_attrs["worker"].endswith(str(host_a))
        runs = {run.name: run for run in prefect_server.flow_runs("search-trial/gpu")}
        assert runs[f"pair-trial-{lost.number}"].state.name == "Crashed"
        done = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
        assert {runs[f"pair-trial-{trial.number}"].state.name for trial in done} == {"Completed"}
        # Trials of both workers ran at once before the kill.
        assert any(overlap(runs[f"pair-trial-{lost.number}"], runs[f"pair-trial-{trial.number}"]) for trial in done), (
            "the two workers never ran trials at once"
        )

        # Each finished trial is a DVC experiment on origin, linked both ways to its MLflow run,
        # which sits under the search's run; the best is marked.
        assert {f"pair-trial-{trial.number}" for trial in done} <= exp_refs(host_b)
        client = mlflow.MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name("imagepipe").experiment_id
        parent = client.search_runs([experiment], "tags.search = 'pair'")[0]
        children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert len(children) == 3 and all(run.data.tags["dvc_experiment"].startswith("pair-trial-") for run in children)
        best = max(done, key=lambda trial: trial.value)
        assert parent.data.tags["best_dvc_experiment"] == f"pair-trial-{best.number}"
        best_run = client.get_run(parent.data.tags["best_run_id"])
        assert (
            best_run.data.tags["search_best"] == "true"
            and best_run.data.tags["dvc_experiment_rev"] == (best.user_attrs["dvc_experiment_rev"])
        )
        assert f"MLflow run {best_run.info.run_id}" in git(
            host_b, "log", "-1", "--format=%B", best.user_attrs["dvc_experiment_rev"]
        )
        assert float(best_run.data.params["train_cnn.learning_rate"]) == pytest.approx(
            best.params["train_cnn.learning_rate"]
        )
        shown = artifacts(prefect_server, searched)["search-pair"]
        assert f"**`pair-trial-{best.number}`**" in shown and "dvc exp apply" in shown

        # No trial touched another's workspace: B's clone is as committed.
        assert (host_b / "dvc.lock").read_text() == lock_b and not git(host_b, "status", "--porcelain", "params.yaml")

        # The killed worker's clone recovers: restarted, it runs a search on its own, where the
        # pruner stops the trial that learns nothing.
        with worker(prefect_server, "cpu", host_a, env), worker(prefect_server, "gpu", host_a, env, limit=1):
            pruned_search = prefect_server.run(
                "search/cnn", {"name": "prune", "storage_url": storage, "study": "prune"}
            )
        assert pruned_search.state.is_completed(), prefect_server.logs(pruned_search)
        first, second = optuna.load_study(study_name="prune", storage=storage).trials
        assert first.state == optuna.trial.TrialState.COMPLETE and first.params == {"train_cnn.learning_rate": 0.003}
        assert second.state == optuna.trial.TrialState.PRUNED and list(second.intermediate_values) == [0]
        runs = {run.name: run for run in prefect_server.flow_runs("search-trial/gpu")}
        assert runs["prune-trial-1"].state.name == "Pruned"
        pruned_run = client.search_runs([experiment], "tags.optuna_study = 'prune' and tags.optuna_trial = '1'")[0]
        assert pruned_run.info.status == "KILLED" and pruned_run.data.tags["optuna_pruned_at_epoch"] == "0"
        assert "prune-trial-1" not in exp_refs(host_a)

        # The winner applied the DVC way, in a fresh clone: its params and its model.
        user = clone(origin, tmp_path / "user", remote)
        dvc(user, "exp", "pull", "origin", f"pair-trial-{best.number}")
        dvc(user, "exp", "apply", f"pair-trial-{best.number}")
        applied = yaml.safe_load((user / "params.yaml").read_text())["train_cnn"]["learning_rate"]
        assert applied == pytest.approx(best.params["train_cnn.learning_rate"])
        assert json.loads((user / "models/cnn/mlflow.json").read_text())["run_id"] == best_run.info.run_id
