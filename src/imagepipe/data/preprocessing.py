"""Preprocessing: pixels to [0, 1] floats, one-hot labels, a stratified validation split."""

import numpy as np

from imagepipe.data.splits import stratified_split
from imagepipe.data.storage import Split


def normalize(images: np.ndarray, dtype: str) -> np.ndarray:
    """uint8 pixels scaled to [0, 1], through a 256-entry table: no float32 copy of the batch."""
    table = (np.arange(256, dtype=np.float64) / 255).astype(dtype)
    return table[images]


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.uint8)[labels]


def prepare(
    train: Split,
    test: Split,
    num_classes: int,
    validation_split: float,
    dtype: str,
    seed: int,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"|"val"|"test": (images in [0, 1], one-hot labels)}."""
    kept, held = stratified_split(
        train.labels,
        validation_split,
        seed,
        "train into train and validation (preprocess.validation_split)",
    )
    splits = {"train": train.subset(kept), "val": train.subset(held), "test": test}
    return {
        name: (normalize(split.images, dtype), one_hot(split.labels, num_classes)) for name, split in splits.items()
    }
