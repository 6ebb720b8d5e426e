"""Anomaly scores: one class held out as the anomaly, the normal images the models learn
from, reconstruction errors, and the AUROC that scores them.

Both families are trained on the normal classes only and score a test image by how badly they
reconstruct it; the AUROC of that score, with the held-out class as the positive, is the
champion metric. The test items are rows [score, is_anomaly], so a bootstrap resample of
the test set is a weighted AUROC of them.
"""

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from imagepipe.core.errors import StageError
from imagepipe.core.sections import InputsParams
from imagepipe.training.inputs import DEFAULT_INPUTS, Split, batches

# The served threshold: an image scores as an anomaly above this percentile of the normal
# validation images' errors, so about 1% of normal images are flagged.
THRESHOLD_PERCENTILE = 99.0


def anomaly_index(class_names: list[str], anomaly_class: str | None) -> int:
    """The index of anomaly_class in class_names (None: the last class), or a StageError naming them."""
    if len(class_names) < 2:
        raise StageError(f"anomaly detection needs 2 classes or more (normal and anomaly), got {class_names}")
    if anomaly_class is None:
        return len(class_names) - 1
    if anomaly_class not in class_names:
        raise StageError(
            f"anomaly_class {anomaly_class!r} is not a class of the data; the classes are "
            f"{', '.join(repr(name) for name in class_names)} (or null: the last one)"
        )
    return class_names.index(anomaly_class)


def normal_images(
    split: Split,
    anomaly: int,
    batch_size: int,
    seed: int,
    shuffle: bool = False,
    inputs: InputsParams = DEFAULT_INPUTS,
) -> tf.data.Dataset:
    """Batches of the split's images (no labels) without the anomaly class, read as
    training.inputs.batches reads them (in memory within inputs.cache_mb, else streamed), so
    memory does not grow with the split. Batches lose their anomalies and so vary in size; a
    batch left empty is dropped."""
    if not np.any(split.labels() != anomaly):
        raise StageError(f"the {split.shards.name} split holds no image outside the anomaly class")
    # Unshuffled (validation): the float32 batches are cached when they fit inputs.cache_mb.
    data = batches(split, batch_size, seed, shuffle=shuffle, inputs=inputs, cache=not shuffle)
    data = data.map(lambda images, labels: tf.boolean_mask(images, labels[:, anomaly] < 0.5))
    return data.filter(lambda images: tf.shape(images)[0] > 0).prefetch(tf.data.AUTOTUNE)


def scored_labels(split: Split, anomaly: int) -> np.ndarray:
    """The split's labels, or a StageError if it lacks normal images or anomalies (no AUROC then)."""
    labels = split.labels()
    if not np.any(labels == anomaly) or not np.any(labels != anomaly):
        raise StageError(
            f"the {split.shards.name} split needs images of the anomaly class and of the others to score "
            f"anomaly detection; it has {int(np.sum(labels == anomaly))} of {len(labels)} in the anomaly class"
        )
    return labels


def per_image_mse(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Each image's mean squared reconstruction error (as serving.anomaly_table scores it)."""
    difference = np.asarray(images, np.float64) - np.asarray(reconstructions, np.float64)
    return np.mean(difference**2, axis=tuple(range(1, difference.ndim)))


def reconstruction_errors(model: keras.Model, split: Split, batch_size: int) -> np.ndarray:
    """Each image's mean squared reconstruction error by model (pixels → pixels), in split
    order, a batch at a time: memory holds one batch of images."""
    errors = [
        per_image_mse(images, model.predict_on_batch(images))
        for images, _ in batches(split, batch_size, seed=0, cache=False).as_numpy_iterator()
    ]
    return np.concatenate(errors) if errors else np.zeros(0)


def threshold(normal_errors: np.ndarray) -> float:
    """The served anomaly threshold: THRESHOLD_PERCENTILE of normal images' errors."""
    if len(normal_errors) == 0:
        raise StageError("no normal validation images to set the anomaly threshold from")
    return float(np.percentile(normal_errors, THRESHOLD_PERCENTILE))


def weighted_auroc(items: np.ndarray, weights: np.ndarray) -> float:
    """The AUROC of items' scores (column 0) for telling anomalies (column 1 is 1) from normal
    images, each row counted weights times: 1.0 when every anomaly scores above every normal
    image, 0.5 by chance. A resample that has only one of the two (a tiny test set's) has no
    AUROC; it counts as 0.5, chance, so the bootstrap interval stays defined."""
    items, weights = np.asarray(items, np.float64), np.asarray(weights, np.float64)
    anomalous = items[:, 1] > 0.5
    if weights[anomalous].sum() <= 0 or weights[~anomalous].sum() <= 0:
        return 0.5
    kept = weights > 0  # rows a resample did not draw: sklearn needs no zero weights
    return float(roc_auc_score(anomalous[kept], items[kept, 0], sample_weight=weights[kept]))


def scored_items(scores: np.ndarray, labels: np.ndarray, anomaly: int) -> np.ndarray:
    """The Evaluation items: per test image [score, is_anomaly] as float64."""
    return np.column_stack([np.asarray(scores, np.float64), (labels == anomaly).astype(np.float64)])


def anomaly_metrics(items: np.ndarray, normal_mse: float, class_name: str) -> dict:
    """The metrics both families share (metrics/<family>.json)."""
    anomalous = items[:, 1] > 0.5
    return {
        "test_anomaly_auroc": weighted_auroc(items, np.ones(len(items))),
        "test_reconstruction_mse": float(normal_mse),
        "anomaly_class": class_name,
        "num_test_images": len(items),
        "num_test_anomalies": int(anomalous.sum()),
    }
