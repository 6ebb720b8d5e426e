"""Training the DCGAN: the best generator by FID on validation images."""

import logging
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imagepipe.core.errors import StageError
from imagepipe.core.sections import InputsParams, TrainGanParams
from imagepipe.models.gan import DCGAN
from imagepipe.models.gan_quality import GanMonitor, feature_extractor
from imagepipe.training.inputs import DEFAULT_INPUTS, Split, batches, load_split
from imagepipe.training.state import TrainingState, save_atomically, write_score

logger = logging.getLogger(__name__)


def training_images(
    split: Split, count: int | None, batch_size: int, seed: int, inputs: InputsParams
) -> np.ndarray | tf.data.Dataset:
    """A seeded random subset of count images (all of them when count is None or larger): as a
    float32 array when it fits inputs.cache_mb, otherwise streamed, count images an epoch."""
    count = split.count if count is None else min(count, split.count)
    if count * int(np.prod(split.input_shape)) * 4 <= inputs.cache_mb * 2**20:
        return split.sample(count, seed)
    streamed = batches(split, batch_size, seed, shuffle=True, inputs=inputs)
    return streamed.map(lambda images, labels: images).take(math.ceil(count / batch_size))


def fid_images(split: Split, count: int, name: str, seed: int) -> np.ndarray:
    if count > split.count:
        raise StageError(
            f"train_gan.fid_samples is {count} but the {name} split has {split.count} images; "
            f"set it to at most {split.count}"
        )
    return split.sample(count, seed)


class BestGenerator(keras.callbacks.Callback):
    """Saves the GAN's generator, on its own, whenever FID improves on best."""

    def __init__(self, state: TrainingState, best: float | None):
        super().__init__()
        self.path, self.score_path, self.best = state.best_path, state.score_path, best

    def on_epoch_end(self, epoch, logs=None):
        if self.best is None or logs["fid"] < self.best:
            previous = "nothing" if self.best is None else f"{self.best:.2f}"
            logger.info(
                "epoch %d: FID improved from %s to %.2f; saving the generator to %s",
                epoch + 1,
                previous,
                logs["fid"],
                self.path,
            )
            self.best = logs["fid"]
            save_atomically(self.model.generator, self.path)
            write_score(self.score_path, "fid", self.best)


def generator_callbacks(state: TrainingState) -> list[keras.callbacks.Callback]:
    """TrainingState's callbacks with its ModelCheckpoint, which would save the whole DCGAN,
    swapped for BestGenerator, which starts from the same best FID (a resumed run's)."""
    return [
        BestGenerator(state, callback.best) if isinstance(callback, keras.callbacks.ModelCheckpoint) else callback
        for callback in state.callbacks()
    ]


def train_gan(
    data: Path,
    params: TrainGanParams,
    seed: int,
    classifier: keras.Model,
    state: TrainingState,
    extra_callbacks: list,
    inputs: InputsParams = DEFAULT_INPUTS,
) -> DCGAN:
    """Fit the DCGAN; the best generator by validation FID is kept in state. Returns the GAN."""
    keras.utils.set_random_seed(seed)
    train = load_split(data, "train")
    images = training_images(train, params.max_images, params.batch_size, seed, inputs)
    real_images = fid_images(load_split(data, "val"), params.fid_samples, "val", seed)
    monitor = GanMonitor(
        feature_extractor(classifier),
        real_images,
        state.directory / "samples",
        params.latent_dim,
        seed,
    )
    gan = DCGAN(params.latent_dim, train.input_shape, seed, params.minibatch_stddev)
    gan.compile(params.learning_rate, params.beta_1, params.discriminator_learning_rate, params.label_smoothing)
    # No validation_data: a GAN has no validation loss; FID on validation images takes its place.
    gan.fit(
        images,
        # A dataset comes batched already.
        batch_size=params.batch_size if isinstance(images, np.ndarray) else None,
        epochs=params.epochs,
        callbacks=[monitor, *generator_callbacks(state), *extra_callbacks],
        verbose=2,
    )
    return gan
