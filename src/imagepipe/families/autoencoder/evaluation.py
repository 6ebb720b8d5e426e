"""The autoencoder on the test set, and what it is served with.

Metrics (metrics/autoencoder.json): `test_anomaly_auroc`, the champion metric, the AUROC of
the reconstruction error (per-image MSE) for telling the anomaly class from the others, on the
whole test split; `test_reconstruction_mse`, the mean per-image MSE of the normal test images;
`anomaly_class`; `num_test_images`, `num_test_anomalies`. The items are per test image
[reconstruction error, is_anomaly].
"""

import logging
from pathlib import Path

import keras
import numpy as np

from imagepipe.core.params import Params
from imagepipe.families.anomaly.scores import (
    anomaly_index,
    anomaly_metrics,
    reconstruction_errors,
    scored_items,
    scored_labels,
    threshold,
)
from imagepipe.families.base import Evaluation, Serving
from imagepipe.tracking.serving import anomaly_table
from imagepipe.training.inputs import load_class_names, load_split

logger = logging.getLogger(__name__)
SERVING_EXAMPLES = 4


def evaluate(model: keras.Model, data: Path, params: Params) -> Evaluation:
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, params.train_autoencoder.anomaly_class)
    test = load_split(data, "test")
    labels = scored_labels(test, anomaly)
    errors = reconstruction_errors(model, test, params.evaluate.batch_size)
    items = scored_items(errors, labels, anomaly)
    return Evaluation(anomaly_metrics(items, errors[labels != anomaly].mean(), class_names[anomaly]), items)


def served_threshold(model: keras.Model, data: Path, anomaly: int, batch_size: int) -> float:
    """The 99th percentile of the reconstruction error of the normal validation images."""
    val = load_split(data, "val")
    return threshold(reconstruction_errors(model, val, batch_size)[val.labels() != anomaly])


def serving(model: keras.Model, data: Path, params: Params) -> Serving:
    """Served on raw pixels (0..255, scaled by 1/255 before the model), answering each image's
    anomaly score (reconstruction MSE) and whether it is above the threshold."""
    section = params.train_autoencoder
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, section.anomaly_class)
    limit = served_threshold(model, data, anomaly, section.batch_size)
    val = load_split(data, "val")
    example = (val.images(np.arange(min(SERVING_EXAMPLES, val.count))) * 255).round()
    inputs = example * np.float32(1 / 255)
    config = {
        "kind": "reconstructor",
        "input_scale": 1 / 255,
        "input_shape": list(val.input_shape),
        "anomaly_threshold": limit,
        "anomaly_class": class_names[anomaly],
    }
    return Serving(example, anomaly_table(inputs, model.predict(inputs, verbose=0), limit), config)
