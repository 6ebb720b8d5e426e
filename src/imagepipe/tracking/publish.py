"""Publishing a trained model: its .keras file, plots and a pyfunc wrapper logged and registered in MLflow."""

from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import infer_signature

from imagepipe.core.files import write_json
from imagepipe.models.loading import load_keras
from imagepipe.tracking.provenance import package_versions
from imagepipe.training.inputs import load_class_names, load_split
from imagepipe.training.state import TrainingState

SERVING_CODE = Path(__file__).with_name("serving.py")


def log_keras_model(
    keras_file: Path,
    registered_name: str,
    example: np.ndarray,
    output: np.ndarray,
    model_config: dict,
) -> dict:
    """Log keras_file as a pyfunc model with signature and input example, and register it."""
    # The model and its registered version belong to the training run: without one, they would
    # be logged to no run and the returned reference could not name it.
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(
            f"log_keras_model({keras_file}) needs an active MLflow run; call it inside the stage's training run"
        )
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SERVING_CODE),
        artifacts={"keras_model": str(keras_file)},
        model_config=model_config,
        signature=infer_signature(example, output),
        input_example=example,
        registered_model_name=registered_name,
        pip_requirements=[f"{package}=={version}" for package, version in package_versions().items()],
    )
    return {
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "registered_model": registered_name,
        "version": str(info.registered_model_version),
    }


def publish_classifier(state: TrainingState, data: Path, registered_name: str, model_dir: Path, plots: Path) -> None:
    """Register the best checkpoint as a raw-pixel classifier, then publish it, its history and
    `mlflow.json` (the run and registered version) into the DVC outs."""
    val = load_split(data, "val")
    example = (val.images(np.arange(min(4, val.count))) * 255).round()
    best = load_keras(state.best_path)
    reference = log_keras_model(
        state.best_path,
        registered_name,
        example,
        best.predict(example / 255, verbose=0),
        {"input_scale": 1 / 255},
    )
    reference["class_names"] = load_class_names(data)
    state.publish(Path(model_dir) / "best.keras", Path(plots) / "history.csv")
    write_json(Path(model_dir) / "mlflow.json", reference)
