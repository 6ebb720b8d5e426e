"""A task's champion as scoring needs it: the served pyfunc, its Keras file cut at the features,
and the drift reference its training stage logged beside it.

The predicted classes of new images are compared with the champion's predictions on the
reference's training images, which the layers after the feature layer give from the stored
features (those layers form a chain in every classifier here: dropout and the softmax, or the
transfer head's softmax). Where they do not, the training labels' counts stand in.

Everything is read from one registered version, resolved from the `champion` alias once, so a
promotion during a scoring run cannot mix two versions' predictions and features.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from imagepipe.core.errors import StageError
from imagepipe.models.heads import FEATURE_LAYER, feature_model
from imagepipe.models.loading import load_keras
from imagepipe.tracking.registry import CHAMPION

logger = logging.getLogger(__name__)
REFERENCE_FILE = "drift_reference.npz"


class ChampionError(StageError):
    """The registered model has no champion, or the champion lacks what scoring reads."""


@dataclass(frozen=True)
class DriftReference:
    features: np.ndarray  # (n, d) float32: the features layer on a sample of train images
    class_counts: np.ndarray  # (k,) int64: the train labels' counts
    class_names: tuple[str, ...]
    feature_layer: str  # the classifier's layer the features were taken from


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    served: PyFuncModel
    features: keras.Model  # pixels in [0, 1] in, the reference's feature layer out
    reference: DriftReference
    expected_counts: np.ndarray  # (k,) the champion's predicted classes on the reference's images

    @property
    def input_shape(self) -> tuple[int, int, int]:
        height, width, channels = self.features.input_shape[1:]
        return int(height), int(width), int(channels)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.reference.class_names

    def predict(self, images: np.ndarray) -> pd.DataFrame:
        """The served model's answer for raw pixels: predicted_class, then a probability per class."""
        output = self.served.predict(images.astype(np.float32))
        if not isinstance(output, pd.DataFrame):
            raise ChampionError(
                f"{self.name} v{self.version} returns {type(output).__name__}, not a table of class names and "
                "probabilities: it was registered before the served model named classes; retrain it"
            )
        return output.reset_index(drop=True)

    def embed(self, images: np.ndarray) -> np.ndarray:
        features = self.features.predict(images.astype(np.float32) / 255, verbose=0)
        return features.reshape(len(images), -1)  # flattened, as the reference's


def champion_version(name: str) -> str:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        raise ChampionError(
            f"registered model {name!r} has no {CHAMPION!r} version in the MLflow registry "
            f"({mlflow.get_tracking_uri()}): run the pipeline first, or name another model"
        ) from None


def load_champion(name: str, version: str, directory: Path) -> Champion:
    """Version `version` of registered model `name`, downloaded into directory."""
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(directory)))
    keras_files = sorted((local / "artifacts").rglob("*.keras"))
    references = sorted((local / "artifacts").rglob(REFERENCE_FILE))
    if not keras_files or not references:
        missing = ".keras file" if not keras_files else REFERENCE_FILE
        raise ChampionError(
            f"{name} v{version} has no {missing} among its artifacts: it was registered before scoring "
            "existed; retrain it (dvc repro) to register a version that carries one"
        )
    classifier, reference = load_keras(keras_files[0]), read_reference(references[0])
    return Champion(
        name,
        version,
        mlflow.pyfunc.load_model(str(local)),
        feature_extractor(classifier, reference.feature_layer),
        reference,
        expected_counts(classifier, reference),
    )


def expected_counts(classifier: keras.Model, reference: DriftReference) -> np.ndarray:
    """The champion's predicted classes on the reference's images, counted; the training labels'
    counts when the layers after the feature layer are not a chain to apply to the features."""
    names = [layer.name for layer in classifier.layers]
    previous = classifier.get_layer(reference.feature_layer)
    features = keras.Input(previous.output.shape[1:])
    outputs = features
    for layer in classifier.layers[names.index(reference.feature_layer) + 1 :]:
        if layer.input is not previous.output or len(features.shape) != 2:
            logger.warning(
                "%s: the layers after %r are not a chain on flat features; predictions are compared with labels",
                classifier.name,
                reference.feature_layer,
            )
            return reference.class_counts
        outputs, previous = layer(outputs), layer
    probabilities = keras.Model(features, outputs).predict(reference.features, verbose=0)
    return np.bincount(probabilities.argmax(axis=1), minlength=len(reference.class_names))


def feature_extractor(classifier: keras.Model, layer: str) -> keras.Model:
    """The classifier cut at layer, where its drift reference's features were taken."""
    if layer == FEATURE_LAYER:
        return feature_model(classifier, f"{classifier.name}_features")
    names = [each.name for each in classifier.layers]
    if layer not in names:
        raise ChampionError(f"{classifier.name} has no layer {layer!r}, its drift reference's; its layers: {names}")
    return keras.Model(classifier.inputs, classifier.get_layer(layer).output, name=f"{classifier.name}_features")


def read_reference(path: Path) -> DriftReference:
    with np.load(path, allow_pickle=False) as saved:
        return DriftReference(
            saved["features"].astype(np.float32),
            saved["class_counts"].astype(np.int64),
            tuple(str(name) for name in saved["class_names"]),
            str(saved["feature_layer"]) if "feature_layer" in saved else FEATURE_LAYER,
        )
