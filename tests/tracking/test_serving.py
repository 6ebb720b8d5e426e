import contextlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from keras import layers
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModelContext

from imagepipe.core.errors import StageError
from imagepipe.tracking.publish import DRIFT_REFERENCE, drift_reference, feature_layer, publish_classifier
from imagepipe.tracking.serving import InputShapeError, KerasFileModel
from imagepipe.tracking.store import configure_tracking
from imagepipe.training.inputs import load_split
from imagepipe.training.state import TrainingState
from tests.helpers.data import write_processed
from tests.helpers.servers import served_model

NAME = "fashion_mnist-cnn"
# Names that a URL, a metric key or a JSON key could trip on.
CLASS_NAMES = ["T-shirt/top", "Ümlaut & Co", "bag"]
SHAPE_ERROR = "expected raw images shaped (n, 8, 8, 1), got (2, 32, 32, 3)"


def tiny_classifier(with_features: bool = True) -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = layers.Dense(4, activation="relu", name="features" if with_features else "head")(layers.Flatten()(inputs))
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="probabilities")(x))


def publish(tmp_path: Path, class_names: list[str]) -> str:
    """publish_classifier on a tiny classifier of a tiny 8x8 task; the registered version."""
    data = write_processed(tmp_path / "data", num_classes=3, per_class=20, size=8)
    (data / "classes.json").write_text(json.dumps(class_names))
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", {})
    tiny_classifier().save(state.best_path)
    state.history_path.write_text("epoch,val_accuracy\n0,0.5\n")
    configure_tracking()
    with mlflow.start_run():
        publish_classifier(state, data, NAME, tmp_path / "models", tmp_path / "plots")
    return json.loads((tmp_path / "models/mlflow.json").read_text())["version"]


@pytest.fixture
def version(mlflow_store, tmp_path) -> str:
    return publish(tmp_path, CLASS_NAMES)


def raw_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 8, 8, 1)).astype(np.float32)


def test_the_loaded_classifier_returns_class_names_and_probabilities(version):
    table = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}").predict(raw_images(5))
    assert list(table.columns) == ["predicted_class", *CLASS_NAMES]
    probabilities = table[CLASS_NAMES].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert list(table["predicted_class"]) == [CLASS_NAMES[index] for index in probabilities.argmax(axis=1)]


def test_the_loaded_classifier_refuses_a_wrong_shape_in_one_line(version):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
    with pytest.raises(MlflowException) as refused:
        model.predict(np.zeros((2, 32, 32, 3), np.float32))
    assert refused.value.message == SHAPE_ERROR
    with pytest.raises(MlflowException, match=re.escape("(n, 8, 8, 1), got (2, 64)")):
        model.predict(np.zeros((2, 64), np.float32))


def test_the_shape_error_keeps_its_message_when_the_scoring_server_rewrites_it():
    error = InputShapeError(SHAPE_ERROR)
    error.message = f"Failed to predict data '{np.zeros(3)}'. Error: {error.message}"  # as MLflow's invocations
    assert error.message == SHAPE_ERROR and error.get_http_status_code() == 400
    assert json.loads(error.serialize_as_json())["message"] == SHAPE_ERROR


def test_a_generator_returns_pixels_and_refuses_noise_of_another_size(tmp_path):
    inputs = keras.Input((8,))
    keras.Model(inputs, layers.Reshape((2, 2, 2))(inputs)).save(tmp_path / "generator.keras")
    generator = KerasFileModel()
    generator.load_context(
        PythonModelContext({"keras_model": str(tmp_path / "generator.keras")}, {"output_scale": 255.0})
    )
    assert generator.predict(None, np.ones((3, 8), np.float32)).max() == 255
    with pytest.raises(InputShapeError, match=re.escape("expected noise vectors shaped (n, 8), got (3, 4)")):
        generator.predict(None, np.ones((3, 4), np.float32))


def test_the_version_carries_its_drift_reference(version, tmp_path):
    artifacts = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}", dst_path=str(tmp_path / "m")))
    train = load_split(tmp_path / "data", "train")
    with np.load(artifacts / "artifacts" / f"{DRIFT_REFERENCE}.npz") as reference:
        assert reference["features"].shape == (train.count, 4) and reference["features"].dtype == np.float32
        assert reference["class_counts"].dtype == np.int64
        np.testing.assert_array_equal(reference["class_counts"], np.bincount(train.labels(), minlength=3))
        assert list(reference["class_names"]) == CLASS_NAMES and str(reference["feature_layer"]) == "features"
    config = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}").model_config
    assert config["class_names"] == CLASS_NAMES and config["input_shape"] == [8, 8, 1]


def test_the_drift_reference_is_a_seeded_sample_of_the_feature_layer(tmp_path):
    train = load_split(write_processed(tmp_path / "data", num_classes=3, per_class=20, size=8), "train")
    classifier = tiny_classifier()
    reference = drift_reference(classifier, train, CLASS_NAMES, seed=7, count=10, batch_size=4)
    extractor = keras.Model(classifier.inputs, classifier.get_layer("features").output)
    np.testing.assert_allclose(reference["features"], extractor.predict(train.sample(10, 7), verbose=0), rtol=1e-5)
    assert reference["class_counts"].sum() == train.count


def test_a_classifier_without_a_features_layer_uses_the_layer_under_its_softmax():
    assert feature_layer(tiny_classifier(with_features=False)) == "head"


def test_a_class_named_like_the_prediction_column_is_refused(mlflow_store, tmp_path):
    with pytest.raises(StageError, match="a class is named 'predicted_class'"):
        publish(tmp_path, ["predicted_class", "b", "c"])


@contextlib.contextmanager
def served(model_uri: str, directory: Path):
    """The invocations URL of `mlflow models serve` for model_uri."""
    with served_model(model_uri, directory) as url:
        yield f"{url}/invocations"


def post(url: str, inputs: np.ndarray) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, json.dumps({"inputs": inputs.tolist()}).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_the_served_classifier_answers_class_names_and_a_short_400(version, tmp_path):
    with served(f"models:/{NAME}/{version}", tmp_path) as url:
        status, body = post(url, raw_images(3))
        # Values that would show if the server echoed the request back.
        status_wrong, body_wrong = post(url, np.full((2, 32, 32, 3), 123.25, np.float32))
        status_flat, body_flat = post(url, np.full((2, 64), 123.25, np.float32))
    assert status == 200
    predictions = json.loads(body)["predictions"]
    assert [list(row) for row in predictions] == [["predicted_class", *CLASS_NAMES]] * 3
    assert all(row["predicted_class"] in CLASS_NAMES for row in predictions)
    np.testing.assert_allclose([sum(row[name] for name in CLASS_NAMES) for row in predictions], 1, rtol=1e-5)
    assert status_wrong == 400 and json.loads(body_wrong)["message"] == SHAPE_ERROR
    assert status_flat == 400 and json.loads(body_flat)["message"].endswith("(n, 8, 8, 1), got (2, 64)")
    for refused in (body_wrong, body_flat):
        assert len(refused) < 300 and b"123.25" not in refused
