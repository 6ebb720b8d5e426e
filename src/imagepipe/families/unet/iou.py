"""Intersection over union of masks, from confusion matrices.

A scene's confusion matrix counts its pixels by (true class, predicted class). Summed over
scenes, class k's IoU is TP / (TP + FP + FN) = C[k, k] / (row k + column k - C[k, k]); the mean
IoU averages it over the classes that are in the truth or the prediction (a class in neither
has no IoU and is skipped, as keras.metrics.MeanIoU does). A bootstrap resample of scenes is a
weighted sum of their matrices, so the interval needs only the per-scene rows.
"""

import numpy as np


def confusion_matrices(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Per scene, pixel counts by (true class, predicted class): int64 (n, num_classes, num_classes).

    truth and predicted: class indices (n, height, width), each in 0..num_classes - 1.
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth and predicted masks differ in shape: {truth.shape} vs {predicted.shape}")
    for what, masks in (("true", truth), ("predicted", predicted)):
        if masks.size and (masks.min() < 0 or masks.max() >= num_classes):
            raise ValueError(
                f"{what} masks hold classes {masks.min()}..{masks.max()}, outside 0..{num_classes - 1} "
                f"({num_classes} mask classes)"
            )
    count, cells = len(truth), num_classes * num_classes
    pairs = truth.reshape(count, -1).astype(np.int64) * num_classes + predicted.reshape(count, -1)
    pairs += np.arange(count, dtype=np.int64)[:, None] * cells  # each scene its own block of cells
    return np.bincount(pairs.ravel(), minlength=count * cells).reshape(count, num_classes, num_classes)


def class_iou(confusion: np.ndarray) -> np.ndarray:
    """Each class's IoU from one confusion matrix (K, K); NaN for a class in neither truth nor prediction."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diagonal(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, hits / np.where(union > 0, union, 1), np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    """The mean IoU over the classes present in truth or prediction; NaN if there are no pixels."""
    ious = class_iou(confusion)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def pixel_accuracy(confusion: np.ndarray) -> float:
    confusion = np.asarray(confusion, dtype=np.float64)
    return float(np.trace(confusion) / confusion.sum())


def weighted_mean_iou(items: np.ndarray, weights: np.ndarray) -> float:
    """The mean IoU of scenes whose confusion matrices are the rows of items (n, K*K), each
    counted weights[i] times (a bootstrap resample's counts; all ones: the test set's)."""
    items = np.asarray(items, dtype=np.float64)
    num_classes = int(round(np.sqrt(items.shape[1]))) if items.ndim == 2 else 0
    if items.ndim != 2 or num_classes * num_classes != items.shape[1]:
        raise ValueError(f"items must be flattened square confusion matrices (n, K*K), got the shape {items.shape}")
    if np.shape(weights) != (len(items),):
        raise ValueError(f"need one weight per scene: {len(items)} scenes, weights of shape {np.shape(weights)}")
    return mean_iou((np.asarray(weights, dtype=np.float64) @ items).reshape(num_classes, num_classes))
