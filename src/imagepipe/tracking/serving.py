"""The MLflow pyfunc model behind every registered model: a `.keras` file, loaded safely.

Logged with MLflow's models-from-code, so this file is copied into each logged model and needs
nothing from this project. Inputs are scaled before the Keras model sees them and outputs
after, as the model config says: classifiers take raw pixels (0..255) and return class
probabilities; a generator takes noise and returns pixels.
"""

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


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

    def predict(self, context, model_input, params=None):
        inputs = np.asarray(model_input, dtype=np.float32) * self.input_scale
        outputs = self.model.predict(inputs, verbose=0)
        return outputs * self.output_scale + self.output_offset


mlflow.models.set_model(KerasFileModel())
