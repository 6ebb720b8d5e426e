"""The MLflow pyfunc model behind every registered model: a `.keras` file, loaded safely.

Logged with MLflow's models-from-code, so this file is copied into each logged model and needs
nothing from this project. Inputs are scaled before the Keras model sees them, as the model
config says; the config's `kind` says what the answer is (docs: Model families):

- `classifier` (the default when the config names `class_names`): raw pixels (0..255) in; a
  table out: `predicted_class`, the class name, then each class's probability in a column
  named after it, in class order.
- `generator` (the default otherwise): noise in, pixels out (scaled by `output_scale`, `output_offset`).
- `segmenter`: raw pixels in; per image a mask of class indices (n, height, width), where
  index i is `class_names[i]` (index 0, `background`).
- `reconstructor`: raw pixels in; a table out: `anomaly_score`, the mean squared error of the
  reconstruction, and `is_anomaly`, whether it is above the config's `anomaly_threshold`.
- `detector`: raw pixels in; a table out, one row per detection (see `detections`).

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
ANOMALY_SCORE = "anomaly_score"


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


def anomaly_table(inputs: np.ndarray, reconstructions: np.ndarray, threshold: float) -> pd.DataFrame:
    """Per image, the mean squared error of its reconstruction and whether it exceeds threshold."""
    scores = np.mean((inputs - reconstructions) ** 2, axis=tuple(range(1, inputs.ndim))).astype(np.float32)
    return pd.DataFrame({ANOMALY_SCORE: scores, "is_anomaly": scores > threshold})


BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")


def detections(outputs: np.ndarray, config: dict) -> pd.DataFrame:
    """A detector's raw grid (n, rows, columns, 5 + classes) as a table with a row per detection:
    `image` (its index in the batch), `class` (its name), `score`, and its box `x_min, y_min,
    x_max, y_max` in pixels (edges), best first within each image.

    A cell of `stride` pixels holds an objectness logit; its box: the centre's offset from the
    cell's centre and the log of the width and height, all in cells; then class logits. A cell's
    score for a class is sigmoid(objectness) × softmax(class logits). Pairs scored below
    `score_threshold` are dropped; of boxes of one class overlapping by more than `nms_iou` only
    the best stays (non-maximum suppression); at most `max_detections` (default 100) per image.
    """
    boxes, scores = _decoded_grid(np.asarray(outputs, dtype=np.float64), float(config["stride"]))
    names = np.asarray(config["class_names"], dtype=object)
    limit, nms_iou = int(config.get("max_detections", 100)), float(config["nms_iou"])
    images, labels, kept_scores, kept_boxes = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)], []
    for image in range(len(boxes)):
        cells, classes = np.nonzero(scores[image] >= config["score_threshold"])
        kept = _suppressed(boxes[image, cells], scores[image, cells, classes], classes, nms_iou, limit)
        images.append(np.full(len(kept), image, np.int64))
        labels.append(classes[kept])
        kept_scores.append(scores[image, cells[kept], classes[kept]])
        kept_boxes.append(boxes[image, cells[kept]])
    table = pd.DataFrame({"image": np.concatenate(images), "class": names[np.concatenate(labels)]})
    table["score"] = np.concatenate(kept_scores).astype(np.float32)
    table[list(BOX_COLUMNS)] = np.concatenate([np.zeros((0, 4)), *kept_boxes]).astype(np.float32)
    return table


def _decoded_grid(outputs: np.ndarray, stride: float) -> tuple[np.ndarray, np.ndarray]:
    """Per image and cell (row-major), the box in pixels (n, cells, 4) and the class scores (n, cells, classes)."""
    count, rows, columns = outputs.shape[:3]
    centre_y, centre_x = np.meshgrid(np.arange(rows) + 0.5, np.arange(columns) + 0.5, indexing="ij")
    x, y = (centre_x + outputs[..., 1]) * stride, (centre_y + outputs[..., 2]) * stride
    # exp of a wild logit would overflow; a box twice the canvas is clipped to it anyway.
    largest = np.log(2.0 * max(rows, columns))
    half_width, half_height = (np.exp(np.minimum(outputs[..., k], largest)) * stride / 2 for k in (3, 4))
    boxes = np.stack([x - half_width, y - half_height, x + half_width, y + half_height], axis=-1)
    boxes = np.clip(boxes, 0, np.array([columns, rows, columns, rows]) * stride)
    objectness = 0.5 * (1 + np.tanh(outputs[..., 0] / 2))  # the sigmoid, without exp's overflow
    logits = np.exp(outputs[..., 5:] - outputs[..., 5:].max(axis=-1, keepdims=True))
    scores = objectness[..., None] * logits / logits.sum(axis=-1, keepdims=True)
    return boxes.reshape(count, rows * columns, 4), scores.reshape(count, rows * columns, scores.shape[-1])


def _suppressed(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, nms_iou: float, limit: int) -> np.ndarray:
    """Indices of the boxes that greedy per-class non-maximum suppression keeps, best first."""
    order, kept = np.argsort(-scores, kind="stable"), list[int]()
    while order.size and len(kept) < limit:
        best, order = order[0], order[1:]
        kept.append(best)
        order = order[(labels[order] != labels[best]) | (_box_iou(boxes[best], boxes[order]) <= nms_iou)]
    return np.asarray(kept, dtype=np.int64)


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    overlap = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - overlap
    return overlap / np.maximum(union, 1e-12)


class KerasFileModel(PythonModel):
    def load_context(self, context):
        import keras

        path = context.artifacts["keras_model"]
        # As imagepipe.models.loading.load_keras, which this file cannot import: only .keras files,
        # and safe_mode refuses models that would run arbitrary code (Lambda layers) on load.
        if not path.endswith(".keras"):
            raise ValueError(f"{path} is not a .keras file: only .keras files are loaded (with safe_mode=True)")
        config = context.model_config or {}
        model = keras.saving.load_model(path, safe_mode=True)
        # A nested model the config names is what is served: the VAE's file holds its encoder
        # and decoder, and its decoder is the generator.
        self.model = model.get_layer(config["model_layer"]) if config.get("model_layer") else model
        self.input_scale = float(config.get("input_scale", 1.0))
        self.output_scale = float(config.get("output_scale", 1.0))
        self.output_offset = float(config.get("output_offset", 0.0))
        self.class_names = config.get("class_names") or []
        self.kind = config.get("kind", "classifier" if self.class_names else "generator")
        self.config = config
        # The Keras model's own input shape, not the config's: it is what predict would fail on.
        self.item_shape = tuple(self.model.input_shape[1:])

    def predict(self, context, model_input, params=None):
        inputs = self.checked(model_input) * self.input_scale
        outputs = self.model.predict(inputs, verbose=0)
        if self.kind == "classifier":
            return prediction_table(outputs, self.class_names)
        if self.kind == "segmenter":
            return outputs.argmax(axis=-1).astype(np.int32)
        if self.kind == "reconstructor":
            return anomaly_table(inputs, outputs, self.config["anomaly_threshold"])
        if self.kind == "detector":
            return detections(outputs, self.config)
        return outputs * self.output_scale + self.output_offset

    def checked(self, model_input) -> np.ndarray:
        """model_input as a float32 batch of the model's input shape, or an InputShapeError that
        names the expected and given shapes (never the values)."""
        what = "noise vectors" if self.kind == "generator" else "raw images"
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
