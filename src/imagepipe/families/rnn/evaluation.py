"""The RNN on the test set, and what it is served with: a classifier's, as the CNN's.

Metrics (metrics/rnn.json) have the keys of metrics/cnn.json (imagepipe.training.classification),
so `dvc metrics show` puts the two in one table; the champion metric is `test_accuracy`. The
items are per test image 1.0 when it was classified right, else 0.0.
"""

import tempfile
from pathlib import Path

import keras
import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.params import Params
from imagepipe.families.base import Evaluation, Serving
from imagepipe.tracking.publish import DRIFT_REFERENCE, drift_reference
from imagepipe.tracking.serving import PREDICTED_CLASS, prediction_table
from imagepipe.training.classification import evaluate as classification_metrics
from imagepipe.training.inputs import load_class_names, load_split, predict

SERVING_EXAMPLES = 4


def evaluate(model: keras.Model, data: Path, params: Params) -> Evaluation:
    test = load_split(data, "test")
    actual = test.labels()
    probabilities = predict(model, test, params.evaluate.batch_size)
    metrics, predicted = classification_metrics(probabilities, actual, load_class_names(data))
    return Evaluation(metrics, (predicted == actual).astype(np.float64))


def weighted_accuracy(items: np.ndarray, weights: np.ndarray) -> float:
    """The share of right answers (items: 1.0 right, 0.0 wrong), each counted weights times."""
    items, weights = np.asarray(items, np.float64), np.asarray(weights, np.float64)
    if items.shape != weights.shape:
        raise ValueError(f"one weight per test image is needed: items {items.shape}, weights {weights.shape}")
    return float(np.sum(items * weights) / np.sum(weights))


def serving(model: keras.Model, data: Path, params: Params) -> Serving:
    """Served on raw pixels (0..255, scaled by 1/255 before the model) as a `classifier`: the
    predicted class and each class's probability. The drift reference, as the CNN's
    (tracking.publish, sampled with the pipeline's seed), is written in a scratch folder that
    outlives the call, for MLflow to copy."""
    class_names = load_class_names(data)
    if PREDICTED_CLASS in class_names:
        raise StageError(
            f"a class is named {PREDICTED_CLASS!r}, the served model's column for the predicted class; rename it"
        )
    val = load_split(data, "val")
    example = (val.images(np.arange(min(SERVING_EXAMPLES, val.count))) * 255).round()
    output = prediction_table(model.predict(example / 255, verbose=0), class_names)
    reference_file = Path(tempfile.mkdtemp(prefix="rnn-drift-")) / f"{DRIFT_REFERENCE}.npz"
    arrays = drift_reference(model, load_split(data, "train"), class_names, params.seed)
    np.savez(reference_file, allow_pickle=False, **arrays)
    config = {
        "kind": "classifier",
        "input_scale": 1 / 255,
        "class_names": class_names,
        "input_shape": list(val.input_shape),
    }
    return Serving(example, output, config, {DRIFT_REFERENCE: reference_file})
