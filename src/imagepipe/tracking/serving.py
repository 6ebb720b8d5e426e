"""The MLflow pyfunc model behind every registered model: a `.keras` file, loaded safely.

Logged with MLflow's models-from-code, so this file is copied into each logged model and needs
nothing from this project. Inputs are scaled before the Keras model sees them and outputs
after, as the model config says. A classifier (its config names `class_names`) takes raw pixels
(0..255) and returns a table: `predicted_class`, the class name, then each class's probability
in a column named after it, in class order. A generator takes noise and returns pixels.

Both check the shape of what they are given against the Keras model's input, and refuse another
with an `InputShapeError`: HTTP 400 from `mlflow models serve`, one line naming the expected shape.
"""

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

PREDICTED_CLASS = "predicted_class"


class InputShapeError(MlflowException):
    """Input that is not a batch of what the model takes; served as HTTP 400 with this message alone.

    MLflow's scoring server rewrites the message of an MlflowException that predict raises into
    f"Failed to predict data '{data}'. Error: {message}" (`invocations` in
    mlflow/pyfunc/scoring_server/__init__.py, MLflow 3.x), which would send a request's pixels back
    to it, and turns any other exception into a generic message with a stack trace. So this error
    keeps the message it was raised with: later assignments to `message` are ignored. For the same
    reason the logged signature declares no input schema (publish.py): MLflow's own tensor schema
    check puts the data in its message too.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._first_message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_first_message"):
            self._first_message = value


def prediction_table(probabilities: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Each row's predicted class name, then one probability column per class, in class order."""
    table = pd.DataFrame(probabilities.astype(np.float32), columns=list(class_names))
    table.insert(0, PREDICTED_CLASS, np.asarray(class_names, dtype=object)[probabilities.argmax(axis=1)])
    return table


class KerasFileModel(PythonModel):
    def load_context(self, context):
        import keras

        path = context.artifacts["keras_model"]
        # As imagepipe.models.loading.load_keras, which this file cannot import: only .keras files,
        # and safe_mode refuses models that would run arbitrary code (Lambda layers) on load.
        if not path.endswith(".keras"):
            raise ValueError(f"{path} is not a .keras file: only .keras files are loaded (with safe_mode=True)")
        self.model = keras.saving.load_model(path, safe_mode=True)
        config = context.model_config or {}
        self.input_scale = float(config.get("input_scale", 1.0))
        self.output_scale = float(config.get("output_scale", 1.0))
        self.output_offset = float(config.get("output_offset", 0.0))
        self.class_names = config.get("class_names")
        # The Keras model's own input shape, not the config's: it is what predict would fail on.
        self.item_shape = tuple(self.model.input_shape[1:])

    def predict(self, context, model_input, params=None):
        inputs = self.checked(model_input)
        outputs = self.model.predict(inputs * self.input_scale, verbose=0)
        if self.class_names:
            return prediction_table(outputs, self.class_names)
        return outputs * self.output_scale + self.output_offset

    def checked(self, model_input) -> np.ndarray:
        """model_input as a float32 batch of the model's input shape, or an InputShapeError that
        names the expected and given shapes (never the values)."""
        what = "raw images" if self.class_names else "noise vectors"
        expected = f"expected {what} shaped (n, {', '.join(str(size) for size in self.item_shape)})"
        try:
            inputs = np.asarray(model_input, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputShapeError(
                f"{expected}, got a {type(model_input).__name__} that is not an array of numbers"
            ) from None
        if inputs.ndim == 0 or inputs.shape[0] == 0 or inputs.shape[1:] != self.item_shape:
            raise InputShapeError(f"{expected}, got {inputs.shape}")
        return inputs


mlflow.models.set_model(KerasFileModel())
