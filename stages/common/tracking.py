"""MLflow tracking shared by the training, evaluation and visualization stages.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else `sqlite:///mlflow.db` in the project
with artifacts in `mlartifacts/` beside it. Each training stage owns one run; its id is
written to `models/<model>/mlflow.json` so evaluate and visualize log into the same run.
"""

import logging
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import keras
import mlflow
import numpy as np
import requests
import yaml
from mlflow.models import infer_signature

from stages.common.arrays import read_json, write_json
from stages.common.cli import StageError
from stages.common.models import load_keras
from stages.common.redact import redact
from stages.common.training import TrainingState, load_class_names, load_split

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
HEALTH_TIMEOUT_SECONDS = 10
EXPERIMENT = "imagepipe"
SERVING_CODE = Path(__file__).with_name("serving.py")


def configure() -> None:
    """Point MLflow at the tracking URI and the project's experiment, creating it if needed.
    A tracking server that does not answer fails the stage now, not after its training."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        local = uri.startswith("sqlite:") or uri.startswith("file:")
        mlflow.create_experiment(EXPERIMENT, artifact_location=Path("mlartifacts").resolve().as_uri() if local else None)
    mlflow.set_experiment(EXPERIMENT)


def check_server(uri: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
    except requests.RequestException as error:
        raise StageError(
            f"the MLflow tracking server {redact(uri)} does not answer ({type(error).__name__}): start it, "
            "or point MLFLOW_TRACKING_URI at one that runs (unset, runs go to sqlite:///mlflow.db here)"
        ) from None


def provenance(stage: str, data_paths: list[str]) -> dict[str, str]:
    """Tags tying a run to its code (git commit) and data (the DVC hash recorded in dvc.lock)."""
    tags = {"stage": stage, "git_commit": _git("rev-parse", "HEAD") or "unknown"}
    tags["git_dirty"] = str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower()
    for path in data_paths:
        tags[f"dvc_hash:{path}"] = dvc_hash(path) or "untracked"
    return tags | orchestration_tags()


def orchestration_tags() -> dict[str, str]:
    """The Prefect flow run that started this stage and its params overrides, when one did;
    redacted, as an override of a source may hold credentials."""
    variables = {"prefect_flow_run_id": "IMAGEPIPE_FLOW_RUN_ID", "param_overrides": "IMAGEPIPE_PARAM_OVERRIDES"}
    return {tag: redact(os.environ[variable]) for tag, variable in variables.items() if os.environ.get(variable)}


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


@contextmanager
def training_run(stage: str, state_dir: Path, params: dict, data_paths: list[str]) -> Iterator[mlflow.ActiveRun]:
    """The stage's MLflow run; a run interrupted earlier (its id kept in state_dir) is resumed."""
    configure()
    end_abandoned_run(Path(state_dir) / "abandoned_mlflow_run_id")
    id_file = Path(state_dir) / "mlflow_run_id"
    run_id = id_file.read_text().strip() if id_file.exists() else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else stage) as run:
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(run.info.run_id)
        if run_id is None:
            mlflow.log_params(flatten(params))
        mlflow.set_tags(provenance(stage, data_paths))
        yield run


def end_abandoned_run(id_file: Path) -> None:
    """A run whose resume state was discarded (other params or data) will never be resumed:
    end it KILLED rather than leave it RUNNING."""
    if id_file.exists():
        client = mlflow.MlflowClient()
        run_id = id_file.read_text().strip()
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
            logger.info("MLflow run %s was interrupted and its state discarded: marked KILLED", run_id)
        id_file.unlink()


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class EpochMetrics(keras.callbacks.Callback):
    """Logs every Keras epoch metric to the active MLflow run, step = epoch."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({key: float(value) for key, value in (logs or {}).items()}, step=epoch)


def log_keras_model(keras_file: Path, registered_name: str, example: np.ndarray, output: np.ndarray, model_config: dict) -> dict:
    """Log keras_file as a pyfunc model with signature and input example, and register it."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SERVING_CODE),
        artifacts={"keras_model": str(keras_file)},
        model_config=model_config,
        signature=infer_signature(example, output),
        input_example=example,
        registered_model_name=registered_name,
        pip_requirements=[f"{package}=={version}" for package, version in _versions().items()],
    )
    return {"run_id": mlflow.active_run().info.run_id, "model_uri": info.model_uri, "registered_model": registered_name, "version": str(info.registered_model_version)}


def publish_classifier(state: TrainingState, data: Path, registered_name: str, model_dir: Path, plots: Path) -> None:
    """Register the best checkpoint as a raw-pixel classifier, then publish it, its history and
    `mlflow.json` (the run and registered version) into the DVC outs."""
    images, _ = load_split(data, "val")
    example = (np.asarray(images[:4], np.float32) * 255).round()
    best = load_keras(state.best_path)
    reference = log_keras_model(state.best_path, registered_name, example, best.predict(example / 255, verbose=0), {"input_scale": 1 / 255})
    reference["class_names"] = load_class_names(data)
    state.publish(Path(model_dir) / "best.keras", Path(plots) / "history.csv")
    write_json(Path(model_dir) / "mlflow.json", reference)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {package: version(package) for package in ("tensorflow", "keras", "mlflow", "numpy")}


@contextmanager
def resumed_run(reference_file: Path) -> Iterator[mlflow.ActiveRun]:
    """Re-open the training stage's run (from models/<model>/mlflow.json) to log more to it."""
    configure()
    with mlflow.start_run(run_id=read_json(reference_file)["run_id"]) as run:
        yield run
