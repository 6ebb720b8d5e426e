import keras
import mlflow
import numpy as np
from mlflow import MlflowClient

from imagepipe.tracking.publish import log_keras_model
from imagepipe.tracking.registry import CHAMPION, promote_if_better
from imagepipe.tracking.runs import configure_tracking


def register_version(tmp_path, name="cnn") -> str:
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    path = tmp_path / "model.keras"
    model.save(path)
    example = np.zeros((2, 4, 4, 1), np.float32)
    configure_tracking()
    with mlflow.start_run():
        return log_keras_model(path, name, example, model.predict(example, verbose=0), {"input_scale": 1 / 255})[
            "version"
        ]


def champion_version(name="cnn") -> str:
    return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)


def test_gate_promotes_better_and_refuses_worse(mlflow_store, tmp_path):
    first, second, third, fourth = (register_version(tmp_path) for _ in range(4))
    assert promote_if_better("cnn", first, "test_accuracy", 0.80, True, True).promoted
    worse = promote_if_better("cnn", second, "test_accuracy", 0.70, True, True)
    assert not worse.promoted and worse.reason == "test_accuracy 0.7000 does not beat champion v1's 0.8000"
    assert champion_version() == first
    assert promote_if_better("cnn", third, "test_accuracy", 0.90, True, True).promoted
    invalid = promote_if_better("cnn", fourth, "test_accuracy", 0.99, True, data_valid=False)
    assert not invalid.promoted and "did not pass validation" in invalid.reason
    assert champion_version() == third
    tags = MlflowClient().get_model_version("cnn", second).tags
    assert tags["test_accuracy"] == "0.7" and tags["champion_decision"].startswith("not promoted")


def test_lower_is_better_metric(mlflow_store, tmp_path):
    first, second = register_version(tmp_path, "gan"), register_version(tmp_path, "gan")
    assert promote_if_better("gan", first, "test_fid", 30.0, False, True).promoted
    assert promote_if_better("gan", second, "test_fid", 12.5, False, True).promoted
    assert champion_version("gan") == second


def test_champion_model_takes_raw_pixels(mlflow_store, tmp_path):
    version = register_version(tmp_path)
    promote_if_better("cnn", version, "test_accuracy", 0.5, True, True)
    model = mlflow.pyfunc.load_model("models:/cnn@champion")
    prediction = model.predict(np.full((3, 4, 4, 1), 255, np.float32))
    assert prediction.shape == (3, 2)
    np.testing.assert_allclose(prediction.sum(axis=1), 1, rtol=1e-5)
