"""Checks on what a classifier gives back for real images."""

import numpy as np


def assert_class_probabilities(predictions: np.ndarray, images: int, num_classes: int) -> None:
    """One row per image of num_classes probabilities: each in [0, 1], each row summing to 1."""
    assert predictions.shape == (images, num_classes), predictions.shape
    assert np.isfinite(predictions).all() and 0 <= predictions.min() and predictions.max() <= 1, predictions
    np.testing.assert_allclose(predictions.sum(axis=1), 1, atol=1e-5)
