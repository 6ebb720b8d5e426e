"""Training the DCGAN: the best generator by FID on validation images."""

import logging
from pathlib import Path

import keras
import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.sections import TrainGanParams
from imagepipe.models.gan import DCGAN
from imagepipe.models.gan_quality import GanMonitor, feature_extractor
from imagepipe.training.inputs import load_split
from imagepipe.training.state import TrainingState, save_atomically, write_score

logger = logging.getLogger(__name__)


def sample_images(images: np.ndarray, count: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of count images (all of them when count is None or larger), as float32."""
    if count is not None and count < len(images):
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))]
    return np.asarray(images, np.float32)


def fid_images(images: np.ndarray, count: int, split: str) -> np.ndarray:
    if count > len(images):
        raise StageError(
            f"train_gan.fid_samples is {count} but the {split} split has {len(images)} images; "
            f"set it to at most {len(images)}"
        )
    return np.asarray(images[:count], np.float32)


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
) -> DCGAN:
    """Fit the DCGAN; the best generator by validation FID is kept in state. Returns the GAN."""
    keras.utils.set_random_seed(seed)
    images = sample_images(load_split(data, "train")[0], params.max_images, seed)
    real_images = fid_images(load_split(data, "val")[0], params.fid_samples, "val")
    monitor = GanMonitor(
        feature_extractor(classifier),
        real_images,
        state.directory / "samples",
        params.latent_dim,
        seed,
    )
    gan = DCGAN(params.latent_dim, images.shape[1:], seed)
    gan.compile(params.learning_rate, params.beta_1)
    # No validation_data: a GAN has no validation loss; FID on validation images takes its place.
    gan.fit(
        images,
        batch_size=params.batch_size,
        epochs=params.epochs,
        callbacks=[monitor, *generator_callbacks(state), *extra_callbacks],
        verbose=2,
    )
    return gan
