"""Input pipelines: preprocessed splits from disk and tf.data batches, augmented on the fly."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from imagepipe.core.files import read_json
from imagepipe.core.sections import AugmentationParams
from imagepipe.training.augmentation import augmented, is_enabled

AUTOTUNE = tf.data.AUTOTUNE


def load_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images in [0, 1], one-hot labels) of a preprocess output split, memory-mapped."""
    directory = Path(directory)
    return np.load(directory / f"{split}_images.npy", mmap_mode="r"), np.load(
        directory / f"{split}_labels.npy", mmap_mode="r"
    )


def load_class_names(directory: Path) -> list[str]:
    return read_json(Path(directory) / "classes.json")


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    shuffle: bool = False,
    augment: AugmentationParams | None = None,
) -> tf.data.Dataset:
    """A tf.data pipeline: shuffle, batch, cast to float32, augment whole batches, prefetch.

    The arrays are copied into the pipeline once; nothing else holds the dataset. Unshuffled,
    unaugmented batches (validation) are the same every epoch, so they are cached as float32.
    """
    data = tf.data.Dataset.from_tensor_slices((np.asarray(images), np.asarray(labels)))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.float32)),
        num_parallel_calls=AUTOTUNE,
    )
    if augment is not None and is_enabled(augment):
        data = augmented(data, augment, seed)
    elif not shuffle:
        data = data.cache()
    return data.prefetch(AUTOTUNE)
