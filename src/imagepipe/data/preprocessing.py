"""Preprocessing: a stratified validation split, a shuffled train order, and the normalisation
and label encoding every reader of the processed data applies.

Pixels stay uint8 on disk (a quarter of float32's disk, half of float16's); `preprocessing.json`
defines how they become model inputs (x * scale + offset, as float32) and labels one-hot vectors,
and the input pipelines apply it batch by batch (imagepipe.training.inputs).
"""

from pathlib import Path

import numpy as np

from imagepipe.core.files import read_json, write_json
from imagepipe.data.shards import ShardedSplit, ShardWriter
from imagepipe.data.splits import stratified_split

ENCODING = "preprocessing.json"


def encoding(num_classes: int) -> dict:
    return {"scale": 1 / 255, "offset": 0.0, "labels": "one_hot", "num_classes": num_classes}


def normalize(images: np.ndarray, scale: float = 1 / 255, offset: float = 0.0) -> np.ndarray:
    """uint8 pixels as float32 model inputs."""
    return images.astype(np.float32) * np.float32(scale) + np.float32(offset)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def split_indices(train_labels: np.ndarray, validation_split: float, seed: int) -> dict[str, np.ndarray]:
    """Raw train indices for the processed train split (in a seeded random order, so that a
    streaming shuffle buffer draws from every class) and the validation split."""
    kept, held = stratified_split(
        train_labels, validation_split, seed, "train into train and validation (preprocess.validation_split)"
    )
    return {"train": np.random.default_rng(seed).permutation(kept), "val": held}


def copy_images(source: ShardedSplit, indices: np.ndarray, writer: ShardWriter) -> dict:
    """source's images at indices, in that order, into writer a shard at a time; the split's entry."""
    labels = source.labels()
    for start in range(0, len(indices), writer.capacity):
        chunk = indices[start : start + writer.capacity]
        writer.add(source.read(chunk), labels[chunk])
    return writer.close()


def write_encoding(directory: Path, num_classes: int) -> None:
    write_json(Path(directory) / ENCODING, encoding(num_classes))


def read_encoding(directory: Path) -> dict:
    return read_json(Path(directory) / ENCODING)
