"""Input pipelines over preprocessed shards: tf.data batches, normalised and augmented on the fly.

A split whose pixels fit `inputs.cache_mb` is read into memory once and shuffled whole (the
fastest path, and Fashion-MNIST's). A larger one streams from its shards: shard files in a
shuffled order, interleaved, read as fixed-length records (the `.npy` pixels, past the header the
manifest records), shuffled in a buffer of `inputs.shuffle_buffer_mb`, batched and prefetched; its
memory does not grow with the split. Either way the batches get the normalisation and one-hot
labels that preprocess defined (imagepipe.data.preprocessing), as float32.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from imagepipe.core.files import read_json
from imagepipe.core.sections import AugmentationParams, InputsParams
from imagepipe.data.preprocessing import normalize, one_hot, read_encoding
from imagepipe.data.shards import ShardedSplit, open_split
from imagepipe.training.augmentation import augmented, is_enabled

AUTOTUNE = tf.data.AUTOTUNE
# The budget when a caller sets none (evaluation, a single pass): stream anything over 1 GiB.
DEFAULT_INPUTS = InputsParams(cache_mb=1024, shuffle_buffer_mb=256)


@dataclass(frozen=True)
class Split:
    """A preprocessed split and the encoding that turns its stored values into model inputs."""

    shards: ShardedSplit
    scale: float
    offset: float
    num_classes: int

    @property
    def count(self) -> int:
        return self.shards.count

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shards.shape

    def images(self, indices: np.ndarray) -> np.ndarray:
        """The model inputs (float32) of the images at indices: for a few images, not a split."""
        return normalize(self.shards.read(indices), self.scale, self.offset)

    def sample(self, count: int, seed: int) -> np.ndarray:
        """The model inputs of count images drawn at random (seeded), in split order: a split
        may be sorted by class (an image folder's test split is), so its first images are not a
        sample of it."""
        return self.images(np.sort(np.random.default_rng(seed).choice(self.count, count, replace=False)))

    def labels(self) -> np.ndarray:
        """Every label of the split as a class index."""
        return self.shards.labels()

    def one_hot_labels(self) -> np.ndarray:
        return one_hot(self.labels(), self.num_classes)


def load_split(directory: Path, split: str) -> Split:
    """A split of a preprocess (or prepare_transfer) output."""
    encoding = read_encoding(directory)
    return Split(open_split(directory, split), encoding["scale"], encoding["offset"], encoding["num_classes"])


def load_class_names(directory: Path) -> list[str]:
    return read_json(Path(directory) / "classes.json")


def batches(
    split: Split,
    batch_size: int,
    seed: int,
    shuffle: bool = False,
    augment: AugmentationParams | None = None,
    inputs: InputsParams = DEFAULT_INPUTS,
    cache: bool = True,
) -> tf.data.Dataset:
    """(inputs, one-hot labels) batches of split as float32: shuffled each epoch when asked,
    augmented whole batches at a time, prefetched. Unshuffled, unaugmented batches (validation)
    are the same every epoch, so they are cached as float32 when that fits the budget, unless
    cache is False (a single pass: evaluation, feature extraction)."""
    if split.shards.nbytes <= inputs.cache_mb * 2**20:
        data = _in_memory(split.shards, batch_size, shuffle, seed)
    else:
        data = _streamed(split.shards, shuffle, seed)
        if shuffle:
            buffer = max(1, inputs.shuffle_buffer_mb * 2**20 // split.shards.image_bytes)
            data = data.shuffle(min(buffer, split.count), seed=seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size)
    scale, offset, num_classes = np.float32(split.scale), np.float32(split.offset), split.num_classes
    data = data.map(
        lambda x, y: (tf.cast(x, tf.float32) * scale + offset, tf.one_hot(y, num_classes)),
        num_parallel_calls=AUTOTUNE,
    )
    if augment is not None and is_enabled(augment):
        data = augmented(data, augment, seed)
    elif cache and not shuffle and split.count * np.prod(split.input_shape) * 4 <= inputs.cache_mb * 2**20:
        data = data.cache()
    return data.prefetch(AUTOTUNE)


def predict(model, split: Split, batch_size: int) -> np.ndarray:
    """model's outputs for every image of split, in order, streamed a batch at a time."""
    images = batches(split, batch_size, seed=0, cache=False).map(lambda images, labels: images)
    return model.predict(images, verbose=0)


def _in_memory(shards: ShardedSplit, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches gathered from the whole split, read once into one array: a shuffle permutes
    indices, not images, so the split is held once (no tensor copy, no shuffle buffer of it)."""
    images = np.empty((shards.count, *shards.shape), shards.dtype)
    labels = np.empty(shards.count, np.int64)
    start = 0
    for shard_images, shard_labels in shards.iter_shards():
        end = start + len(shard_labels)
        images[start:end], labels[start:end] = shard_images, shard_labels
        start = end
    indices = tf.data.Dataset.range(shards.count)
    if shuffle:
        indices = indices.shuffle(shards.count, seed=seed, reshuffle_each_iteration=True)

    def gather(index):
        pixels, classes = tf.numpy_function(
            lambda chosen: (images[chosen], labels[chosen]), [index], [tf.as_dtype(shards.dtype), tf.int64]
        )
        pixels.set_shape((None, *shards.shape))
        classes.set_shape((None,))
        return pixels, classes

    return indices.batch(batch_size).map(gather, num_parallel_calls=AUTOTUNE)


def _streamed(shards: ShardedSplit, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Records straight from the shard files: no Python in the loop, shards read in parallel."""
    directory = str(shards.directory)
    files = tf.data.Dataset.from_tensor_slices(
        (
            [f"{directory}/{shard['images']}" for shard in shards.shards],
            np.array([shard["images_offset"] for shard in shards.shards], np.int64),
            [f"{directory}/{shard['labels']}" for shard in shards.shards],
            np.array([shard["labels_offset"] for shard in shards.shards], np.int64),
        )
    )
    if shuffle:
        files = files.shuffle(len(shards.shards), seed=seed, reshuffle_each_iteration=True)
    image_bytes, dtype, shape = shards.image_bytes, tf.as_dtype(shards.dtype), shards.shape

    def records(images, images_offset, labels, labels_offset):
        pixels = tf.data.FixedLengthRecordDataset(images, image_bytes, header_bytes=images_offset)
        classes = tf.data.FixedLengthRecordDataset(labels, 8, header_bytes=labels_offset)
        return tf.data.Dataset.zip(pixels, classes)

    # Shuffled: records of 4 shards at a time, interleaved; otherwise one shard after another,
    # so that predictions line up with the labels.
    data = files.interleave(
        records,
        cycle_length=min(4, len(shards.shards)) if shuffle else 1,
        num_parallel_calls=AUTOTUNE,
        deterministic=not shuffle,
    )
    return data.map(
        lambda pixels, label: (
            tf.reshape(tf.io.decode_raw(pixels, dtype), shape),
            tf.io.decode_raw(label, tf.int64)[0],
        ),
        num_parallel_calls=AUTOTUNE,
    )
