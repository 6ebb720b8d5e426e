"""The DVC pipeline as a Prefect flow: one task per stage of `dvc.yaml`, independent stages at once.

Each task is `dvc repro --single-item <stage>` (see imagepipe/orchestration/dvc_commands.py), so a flow run
leaves the workspace, dvc.lock and the cache as `dvc repro` would. Stages that `dvc status`
reports up to date, with nothing upstream to run, finish at once in the state `Skipped`
without starting DVC. Training stages (`train_*`) each hold a GPU of this host while they run.
"""

import json
from pathlib import Path

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.futures import wait
from prefect.states import Completed

from imagepipe.orchestration import dvc_commands, param_overrides, report, workspace
from imagepipe.orchestration.dag import Stage, needs_repro, read_dag
from imagepipe.orchestration.gpus import GpuSlots, visible_gpus

# A download can fail for reasons that pass (a mirror down, a timeout); a failed validation or
# a crashed training cannot, and retrying them would only hide the error.
RETRIES = {"download": 2, "prepare_transfer": 2}
RETRY_DELAY_SECONDS = 10
# The Prefect global concurrency limit on training stages running at once, across all flow
# runs (`prefect gcl create training --limit <GPUs>`); without it, only GPUs limit them.
TRAINING_LIMIT = "training"


@task(cache_policy=NO_CACHE)
def reproduce(
    root: Path, stage: Stage, env: dict[str, str], slots: GpuSlots, pull: bool, upstream: dict[str, str]
) -> str:
    """Reproduce one stage; `upstream` maps each upstream stage to what it did."""
    logger = get_run_logger()
    if not needs_repro(stage, {name for name, outcome in upstream.items() if outcome != "skipped"}):
        return Completed(name="Skipped", message=f"'{stage.name}' is up to date", data="skipped")
    if not stage.is_training:
        return _state_of(stage, dvc_commands.repro_stage(root, stage.name, env, logger.info, pull))
    # Taken only when the stage runs: acquiring a Prefect limit costs about 2 s the first time
    # in a process, which would double the flow's time on an up-to-date pipeline.
    with concurrency(TRAINING_LIMIT, occupy=1, strict=False), slots.hold() as gpu_env:
        if gpu_env:
            logger.info("running on GPU %s", gpu_env["CUDA_VISIBLE_DEVICES"])
        return _state_of(stage, dvc_commands.repro_stage(root, stage.name, {**env, **gpu_env}, logger.info, pull))


def _state_of(stage: Stage, outcome: str):
    """The task's result: a stage DVC found unchanged shows as Skipped, like one the flow skipped."""
    if outcome == "skipped":
        return Completed(name="Skipped", message=f"DVC found '{stage.name}' unchanged", data="skipped")
    return outcome


@flow(name="pipeline")
def pipeline(
    targets: list[str] | None = None,
    set_params: list[str] | None = None,
    experiment_name: str | None = None,
    share_through_dvc_remote: bool = False,
) -> dict[str, str]:
    """Reproduce dvc.yaml's stages (or `targets` and what they need), like `dvc repro`.

    set_params: overrides in `dvc exp run -S` syntax, e.g. `train_cnn.epochs=3`; the run is then
    saved as a DVC experiment (experiment_name, or the flow run's name).
    share_through_dvc_remote: hosts share results through the workspace's default DVC remote.
    Each stage runs as `dvc repro --pull`, so a stage another host already ran with the same
    code, params and data is restored from the remote's run cache instead of rerun; the
    outputs and run cache are pushed at the end.
    """
    root = Path.cwd()
    with workspace.exclusive(root, get_run_logger()):
        return reproduce_workspace(root, targets, set_params or [], experiment_name, share_through_dvc_remote)


def reproduce_workspace(
    root: Path, targets: list[str] | None, overrides: list[str], experiment_name: str | None, share: bool
) -> dict[str, str]:
    """The flow's work, done while it holds the workspace."""
    if overrides:
        param_overrides.apply(root, overrides)
    recorded = dvc_commands.lock_order(root)
    dag = read_dag(root, targets)
    outcomes = run_stages(root, dag, _stage_environment(overrides), pull=share)
    if set(outcomes.values()) != {"skipped"}:
        dvc_commands.order_lock(root, recorded, [stage.name for stage in dag])
    if overrides:
        name = experiment_name or runtime.flow_run.name
        dvc_commands.dvc(root, "exp", "save", "--force", "--name", name)
        get_run_logger().info("saved as DVC experiment %r (`dvc exp show`)", name)
    if share:
        dvc_commands.push(root)
    report.publish(root, runtime.flow_run.name, overrides, {out for stage in dag for out in stage.outs})
    return outcomes


def run_stages(root: Path, dag: list[Stage], env: dict[str, str], pull: bool) -> dict[str, str]:
    """Submit every stage after its upstream stages; raise the first failure once all have ended."""
    slots = GpuSlots(visible_gpus())
    futures = {}
    for stage in dag:
        upstream = {name: futures[name] for name in stage.upstream if name in futures}
        task_for_stage = reproduce.with_options(
            name=stage.name,
            task_run_name=stage.name,
            retries=RETRIES.get(stage.name, 0),
            retry_delay_seconds=RETRY_DELAY_SECONDS,
        )
        futures[stage.name] = task_for_stage.submit(root, stage, env, slots, pull, upstream)
    wait(list(futures.values()))
    for future in futures.values():
        if future.state.is_failed():
            future.result()  # raises the stage's error, e.g. the failed expectations
    return {name: future.result() for name, future in futures.items()}


def _stage_environment(overrides: list[str]) -> dict[str, str]:
    """Tell the stages which flow run started them and with which overrides (MLflow tags)."""
    return {"IMAGEPIPE_FLOW_RUN_ID": str(runtime.flow_run.id), "IMAGEPIPE_PARAM_OVERRIDES": json.dumps(overrides)}
