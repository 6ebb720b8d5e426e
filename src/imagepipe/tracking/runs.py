"""MLflow runs: one run per training stage (resumed after a crash), per-epoch metrics."""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import mlflow

from imagepipe.core.files import read_json, replace_whole
from imagepipe.tracking.provenance import provenance
from imagepipe.tracking.store import configure_tracking

logger = logging.getLogger(__name__)

NOT_IN_METRIC_NAMES = re.compile(r"[^A-Za-z0-9_\-. /:]")
RUN_ID = re.compile(r"[0-9a-f]{32}")


def metric_names(prefix: str, names: list[str]) -> list[str]:
    """MLflow metric keys `prefix.<name>` for names of any characters: a name MLflow refuses
    (it allows ASCII letters, digits, `_ - . / :` and spaces) has the others replaced by `_`, and
    names that would then clash get their index appended, so every name keeps its own key."""
    keys = [f"{prefix}.{NOT_IN_METRIC_NAMES.sub('_', name)}" for name in names]
    clashing = {key for key in keys if keys.count(key) > 1}
    return [f"{key}_{index}" if key in clashing else key for index, key in enumerate(keys)]


@contextmanager
def training_run(stage: str, state_dir: Path, params: dict, data_paths: list[str]) -> Iterator[mlflow.ActiveRun]:
    """The stage's MLflow run; a run interrupted earlier (its id kept in state_dir) is resumed."""
    configure_tracking()
    end_abandoned_run(Path(state_dir) / "abandoned_mlflow_run_id")
    id_file = Path(state_dir) / "mlflow_run_id"
    run_id = recorded_run_id(id_file)
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else stage) as run:
        id_file.parent.mkdir(parents=True, exist_ok=True)
        replace_whole(id_file, lambda scratch: scratch.write_text(run.info.run_id))
        if run_id is None:
            mlflow.log_params(flatten(params))
        mlflow.set_tags(provenance(stage, data_paths))
        yield run


def end_abandoned_run(id_file: Path) -> None:
    """A run whose resume state was discarded (other params or data) will never be resumed:
    end it KILLED rather than leave it RUNNING."""
    run_id = recorded_run_id(id_file)
    if run_id is not None:
        client = mlflow.MlflowClient()
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
            logger.info(
                "MLflow run %s was interrupted and its state discarded: marked KILLED",
                run_id,
            )
    id_file.unlink(missing_ok=True)


def recorded_run_id(id_file: Path) -> str | None:
    """The MLflow run id kept in a state file; None when there is none, or when the file cannot
    be read as one (torn by a kill or a power loss): the stage then starts a new run."""
    if not id_file.exists():
        return None
    run_id = id_file.read_text(errors="replace").strip()
    if RUN_ID.fullmatch(run_id):
        return run_id
    logger.warning("ignoring %s: %r is not an MLflow run id; starting a new run", id_file, run_id[:40])
    return None


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
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


@contextmanager
def resumed_run(reference_file: Path) -> Iterator[mlflow.ActiveRun]:
    """Re-open the training stage's run (from models/<model>/mlflow.json) to log more to it."""
    configure_tracking()
    with mlflow.start_run(run_id=read_json(reference_file)["run_id"]) as run:
        yield run
