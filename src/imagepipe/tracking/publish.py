"""Publishing a trained model: its .keras file, plots and a pyfunc wrapper logged and registered in MLflow.

A classifier version also carries `drift_reference` (drift_reference.npz), what batch scoring
compares new images with: `features`, the classifier's feature layer (`feature_layer`, its name)
on a seeded sample of at most DRIFT_SAMPLE train images; `class_counts`, the train split's label
count per class; and `class_names`.
"""

import tempfile
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature

from imagepipe.core.errors import StageError
from imagepipe.core.files import write_json
from imagepipe.models.heads import FEATURE_LAYER
from imagepipe.models.loading import load_keras
from imagepipe.tracking.provenance import package_versions
from imagepipe.tracking.serving import PREDICTED_CLASS, prediction_table
from imagepipe.training.inputs import Split, load_class_names, load_split
from imagepipe.training.state import TrainingState

SERVING_CODE = Path(__file__).with_name("serving.py")
DRIFT_REFERENCE = "drift_reference"
# Enough images for a two-sample test on the features to see a shift, few enough to score fast.
DRIFT_SAMPLE = 2000
DRIFT_SEED = 0


def log_keras_model(
    keras_file: Path,
    registered_name: str,
    example: np.ndarray,
    output: np.ndarray | pd.DataFrame,
    model_config: dict,
    artifacts: dict[str, Path] | None = None,
) -> dict:
    """Log keras_file (and any other artifacts) as a pyfunc model with an output signature and
    an input example, and register it."""
    # The model and its registered version belong to the training run: without one, they would
    # be logged to no run and the returned reference could not name it.
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(
            f"log_keras_model({keras_file}) needs an active MLflow run; call it inside the stage's training run"
        )
    # No input schema: MLflow would check a request against it before the model does, and its
    # message quotes the whole request (see serving.InputShapeError). The model checks the
    # shape itself; the input example and model_config show it.
    signature = ModelSignature(outputs=infer_signature(example, output).outputs)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SERVING_CODE),
        artifacts={"keras_model": str(keras_file), **{key: str(path) for key, path in (artifacts or {}).items()}},
        model_config=model_config,
        signature=signature,
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


def publish_classifier(
    state: TrainingState,
    data: Path,
    registered_name: str,
    model_dir: Path,
    plots: Path,
    seed: int = DRIFT_SEED,
) -> None:
    """Register the best checkpoint as a raw-pixel classifier with its drift reference (sampled
    with seed), then publish it, its history and `mlflow.json` (the run and registered version)
    into the DVC outs."""
    val = load_split(data, "val")
    class_names = load_class_names(data)
    if PREDICTED_CLASS in class_names:
        raise StageError(
            f"a class is named {PREDICTED_CLASS!r}, the served model's column for the predicted class; rename it"
        )
    example = (val.images(np.arange(min(4, val.count))) * 255).round()
    best = load_keras(state.best_path)
    config = {"input_scale": 1 / 255, "class_names": class_names, "input_shape": list(val.input_shape)}
    with tempfile.TemporaryDirectory() as scratch:
        reference_file = Path(scratch) / f"{DRIFT_REFERENCE}.npz"
        np.savez(
            reference_file, allow_pickle=False, **drift_reference(best, load_split(data, "train"), class_names, seed)
        )
        reference = log_keras_model(
            state.best_path,
            registered_name,
            example,
            prediction_table(best.predict(example / 255, verbose=0), class_names),
            config,
            {DRIFT_REFERENCE: reference_file},
        )
    reference["class_names"] = class_names
    state.publish(Path(model_dir) / "best.keras", Path(plots) / "history.csv")
    write_json(Path(model_dir) / "mlflow.json", reference)


def feature_layer(classifier: keras.Model) -> str:
    """The layer whose output is the classifier's features: `features` where the model names one
    (the CNNs), else the one under the softmax (the transfer classifier's `head`)."""
    names = [layer.name for layer in classifier.layers]
    return FEATURE_LAYER if FEATURE_LAYER in names else names[-2]


def drift_reference(
    classifier: keras.Model,
    train: Split,
    class_names: list[str],
    seed: int,
    count: int = DRIFT_SAMPLE,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """The arrays of drift_reference.npz (module docstring) for classifier and its train split,
    the features on count images at most: the sample goes through the model a batch at a time,
    so memory holds one batch of images."""
    layer = feature_layer(classifier)
    extractor = keras.Model(classifier.inputs, classifier.get_layer(layer).output)
    # As Split.sample: sorted, so that the shards are read in order.
    indices = np.sort(np.random.default_rng(seed).choice(train.count, min(count, train.count), replace=False))
    features = [
        np.asarray(extractor.predict_on_batch(train.images(indices[start : start + batch_size])), np.float32)
        for start in range(0, len(indices), batch_size)
    ]
    return {
        "features": np.concatenate(features).reshape(len(indices), -1),
        "class_counts": np.bincount(train.labels(), minlength=len(class_names)).astype(np.int64),
        "class_names": np.array(class_names, dtype=str),
        "feature_layer": np.array(layer),
    }
