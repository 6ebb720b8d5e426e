import re

import keras
import numpy as np
import pytest
from keras import layers
from mlflow.pyfunc import PythonModelContext

from imagepipe.models.backbones import build_backbone
from imagepipe.models.loading import ModelFileError, load_keras
from imagepipe.tracking.serving import KerasFileModel


def small_model(with_lambda: bool = False) -> keras.Model:
    inputs = keras.Input((4,))
    x = layers.Lambda(lambda t: t * 2.0)(inputs) if with_lambda else inputs
    return keras.Model(inputs, layers.Dense(2, name="features")(x))


def test_a_keras_file_of_built_in_layers_loads(tmp_path):
    model = small_model()
    model.save(tmp_path / "model.keras")
    inputs = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(
        load_keras(tmp_path / "model.keras").predict(inputs, verbose=0), model.predict(inputs, verbose=0)
    )


def test_a_lambda_layer_is_refused_by_load_keras_and_the_pipeline_backbone(tmp_path):
    path = tmp_path / "best.keras"
    small_model(with_lambda=True).save(path)
    message = re.escape(f"{path} is refused: it holds Python code (a Lambda layer) that loading would run")
    with pytest.raises(ModelFileError, match=message):
        load_keras(path)
    with pytest.raises(ModelFileError, match=message):
        build_backbone("pipeline_cnn", "none", 32, backbone_model=path)


def test_an_h5_model_is_refused_though_keras_could_load_it(tmp_path):
    path = tmp_path / "model.h5"
    model = small_model()
    model.save(path)
    inputs = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(
        keras.saving.load_model(path).predict(inputs, verbose=0), model.predict(inputs, verbose=0)
    )
    message = re.escape(f"{path} is not a .keras file: only .keras files are loaded")
    with pytest.raises(ModelFileError, match=message):
        load_keras(path)
    with pytest.raises(ValueError, match=message):  # the served model: serving.py stands alone
        KerasFileModel().load_context(PythonModelContext({"keras_model": str(path)}, None))


def test_an_unreadable_keras_file_names_the_file(tmp_path):
    path = tmp_path / "truncated.keras"
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFileError, match=re.escape(f"cannot load {path}: ")):
        load_keras(path)


def test_the_served_model_refuses_a_lambda_layer(tmp_path):
    path = tmp_path / "best.keras"
    small_model(with_lambda=True).save(path)
    with pytest.raises(ValueError, match="arbitrary code execution"):
        KerasFileModel().load_context(PythonModelContext({"keras_model": str(path)}, None))
