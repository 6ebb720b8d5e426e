"""Hyperparameter search as Prefect flows: `search` fans trials out over a work pool, `search-trial` runs one.

A search (declared in search.yaml) is an Optuna study in storage every host reaches. The
`search` flow creates it and an MLflow parent run, then starts `trials` runs of the
`search-trial/<pool>` deployment as its subflows; each worker that picks one up runs it in its
own clone: the trial draws its params from the study, reproduces the search's stage through DVC
(its epochs reported to the pruner), and is saved as a named DVC experiment whose MLflow run
sits under the parent. The search waits for every trial, fails the trials of workers that
stopped sending heartbeats, and reports the best trial and how to apply it.

    python -m flows.search cnn --trials 8 --pool gpu     # or: prefect deployment run search/cnn
"""

import argparse
import datetime
import json
import socket
import sys
import time
import warnings
from pathlib import Path

import optuna
import yaml
from prefect import flow, get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.states import Completed, Crashed

from flows.pipeline import run_stages
from imagepipe.core.params import YamlLoader
from imagepipe.orchestration import dvc_commands, param_overrides, search_report, trials, workspace
from imagepipe.orchestration.dag import params_read, read_dag
from imagepipe.search.context import TrialContext
from imagepipe.search.spec import Search, check_keys, load_search, starting_points
from imagepipe.search.study import default_storage, open_study, storage, trial_id

SEARCH_FILE = "search.yaml"
POLL_SECONDS = 2
# A trial run ends within seconds of its trial failing; one still running this long after has
# lost its worker (its trial was failed as stale by Optuna's heartbeat check).
LOST_AFTER_SECONDS = 20


@flow(name="search")
def search(
    name: str = "cnn",
    trials_count: int | None = None,
    pool: str = "gpu",
    storage_url: str | None = None,
    study: str | None = None,
    timeout_minutes: float = 24 * 60,
) -> dict:
    """Run search.yaml's search `name`: trials_count trials (default: the search's `trials`) as
    runs of `search-trial/<pool>`; storage_url: the Optuna storage (default: .search/optuna.db
    in this clone, for workers on this host); study: a name to resume or share (default:
    `<name>-<this flow run's name>`)."""
    root, logger = Path.cwd(), get_run_logger()
    spec = load_search(root / SEARCH_FILE, name)
    baseline = trials.head(root)
    # As committed: trials start from the commit, and a trial may be changing this clone's file.
    params = yaml.load(trials.git(root, "show", f"{baseline}:params.yaml"), Loader=YamlLoader)
    check_keys(spec, params, params_read(root, spec.stage))
    url = storage_url or default_storage(root)
    study_name = study or f"{name}-{runtime.flow_run.name}"
    optuna_study = open_study(url, study_name, spec, create=True)
    if not optuna_study.trials:  # a new study, not one resumed
        for point in starting_points(spec, params):
            optuna_study.enqueue_trial(point)
    count = trials_count or spec.trials
    with search_report.parent_run(study_name, name, spec, baseline, count) as parent:
        parameters = {
            "search": name,
            "study": study_name,
            "storage": url,
            "baseline": baseline,
            "parent_run_id": parent,
        }
        logger.info(
            "search %s: %d trials on pool %r, study %r, baseline %s", name, count, pool, study_name, baseline[:12]
        )
        started = [
            run_deployment(f"search-trial/{pool}", parameters=parameters, timeout=0, as_subflow=True)
            for _ in range(count)
        ]
        wait_for_trials([run.id for run in started], optuna_study, timeout_minutes * 60)
        return search_report.publish(optuna_study, spec, parent, name)


def wait_for_trials(flow_run_ids: list, study: optuna.Study, timeout: float) -> None:
    """Until every trial run has ended. A run whose trial failed LOST_AFTER_SECONDS ago and that
    is still not over lost its worker (the trial went stale): it is set Crashed."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            running = [run for run in flow_run_ids if not _is_final(client.read_flow_run(run).state)]
            for flow_run_id, trial in _lost(study, running).items():
                message = f"trial {trial.number} lost: its worker stopped sending heartbeats"
                client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
                get_run_logger().warning(message)
                running.remove(flow_run_id)
            if not running:
                return
            time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{len(running)} trial run(s) still running after {timeout / 60:.0f} min")


def _lost(study: optuna.Study, running: list) -> dict:
    with warnings.catch_warnings():  # fail_stale_trials is marked experimental since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    now = datetime.datetime.now()
    failed = {
        trial.user_attrs.get("prefect_flow_run_id"): trial
        for trial in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.FAIL])
        if trial.datetime_complete and (now - trial.datetime_complete).total_seconds() > LOST_AFTER_SECONDS
    }
    return {run: failed[str(run)] for run in running if str(run) in failed}


def _is_final(state) -> bool:
    return state is not None and state.is_final()


@flow(name="search-trial")
def trial(search: str, study: str, storage: str, baseline: str, parent_run_id: str | None = None):
    """One trial of the study, in this worker's clone (which must be at the search's baseline commit)."""
    root = Path.cwd()
    spec = load_search(root / SEARCH_FILE, search)
    trials.check_baseline(root, baseline)
    outcome: dict = {}
    with workspace.exclusive(root, get_run_logger()):
        optuna_study = open_study(storage, study, spec)
        optuna_study.optimize(lambda drawn: run_trial(root, spec, drawn, storage, parent_run_id, outcome), n_trials=1)
    if "pruned" in outcome:
        return Completed(name="Pruned", message=outcome["pruned"], data=outcome)
    return outcome


def run_trial(root: Path, spec: Search, drawn: optuna.Trial, url: str, parent: str | None, outcome: dict) -> float:
    """Reproduce the search's stage with the drawn params and save it as a DVC experiment."""
    study, number = drawn.study.study_name, drawn.number
    name = trials.experiment_name(study, number)
    _name_flow_run(name)
    for key, value in {"dvc_experiment": name, "prefect_flow_run_id": str(runtime.flow_run.id)}.items():
        drawn.set_user_attr(key, value)
    drawn.set_user_attr("worker", f"{socket.gethostname()}:{root}")
    drawn.study.sampler = spec.make_sampler(number)
    overrides = spec.overrides(drawn)
    context = TrialContext(url, study, number, spec.monitor, spec.pruner.model_dump(), name, parent)
    env = {
        "IMAGEPIPE_FLOW_RUN_ID": str(runtime.flow_run.id),
        "IMAGEPIPE_PARAM_OVERRIDES": json.dumps(overrides),
        **context.to_env(),
    }
    trials.reset_to_baseline(root)
    try:
        param_overrides.apply(root, overrides)
        recorded, dag = dvc_commands.lock_order(root), read_dag(root, [spec.stage])
        _reproduce(root, dag, env, url, context, outcome)
        dvc_commands.order_lock(root, recorded, [stage.name for stage in dag])
        value = trials.objective_value(root / spec.history, spec.monitor, spec.direction)
        run_id = trials.trial_run_id(study, number)
        message = f"search {study}, trial {number}: {spec.monitor} = {value:.6g}; MLflow run {run_id}"
        revision = trials.save_experiment(root, name, message, [stage.name for stage in dag])
        shared = trials.share_experiment(root, name)
        for key, found in {"mlflow_run_id": run_id, "dvc_experiment_rev": revision}.items():
            drawn.set_user_attr(key, found)
        search_report.link_run(run_id, revision)
        get_run_logger().info("trial %d: %s = %.6g; DVC experiment %s (%s)", number, spec.monitor, value, name, shared)
        outcome.update(number=number, value=value, experiment=name, mlflow_run_id=run_id, overrides=overrides)
        return value
    finally:
        trials.reset_to_baseline(root)


def _reproduce(root: Path, dag, env: dict[str, str], url: str, context: TrialContext, outcome: dict) -> None:
    """The stages; a stage the pruner stopped makes the trial Pruned rather than Failed."""
    try:
        run_stages(root, dag, env, pull=trials.has_dvc_remote(root))
    except dvc_commands.StageFailed as error:
        attributes = storage(url).get_trial(trial_id(url, context.study, context.number)).user_attrs
        if "pruned_at_epoch" not in attributes:
            raise
        epochs = attributes["pruned_at_epoch"] + 1
        outcome["pruned"] = f"trial {context.number} pruned after {epochs} epoch(s)"
        run_id = trials.trial_run_id(context.study, context.number)
        if run_id:
            trials.mark_pruned(run_id)
        raise optuna.TrialPruned(outcome["pruned"]) from error


def _name_flow_run(name: str) -> None:
    """The trial's flow run shows its DVC experiment's name in the Prefect UI."""
    with get_client(sync_client=True) as client:
        client.update_flow_run(runtime.flow_run.id, name=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a search of search.yaml, e.g. cnn")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--pool", default="gpu", help="the work pool whose workers run the trials")
    parser.add_argument("--storage", default=None, help="Optuna storage URL shared by the workers")
    parser.add_argument("--study", default=None, help="a study name to resume")
    args = parser.parse_args()
    result = search(args.name, args.trials, args.pool, args.storage, args.study)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
