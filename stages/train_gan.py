"""train_gan: a DCGAN on up to `max_images` of `data/processed/`'s train images.

The best epoch by FID on validation images (features from the CNN's `features` layer) becomes
`models/gan/best.keras`, the generator alone: `latent_dim` standard-normal noise in, pixels in
[0, 1] out. It is also the registered MLflow model `gan`, which returns pixels in 0..255.
Per-epoch sample grids go to `plots/gan/samples/`, the losses and FID to `plots/gan/history.csv`.
"""

import argparse
import logging
import shutil
from pathlib import Path

import keras
import mlflow
import numpy as np

from stages.common.accelerator import configure
from stages.common.arrays import write_json
from stages.common.cli import StageError, run_stage
from stages.common.gan import DCGAN, GanMonitor, feature_extractor
from stages.common.models import load_keras
from stages.common.params import TrainGanParams, load_params
from stages.common.tracking import EpochMetrics, dvc_hash, log_keras_model, training_run
from stages.common.training import TrainingState, load_split, save_atomically, write_score

logger = logging.getLogger(__name__)


def sample_images(images: np.ndarray, count: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of count images (all of them when count is None or larger), as float32."""
    if count is not None and count < len(images):
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))]
    return np.asarray(images, np.float32)


def fid_images(images: np.ndarray, count: int, split: str) -> np.ndarray:
    if count > len(images):
        raise StageError(f"train_gan.fid_samples is {count} but the {split} split has {len(images)} images; set it to at most {len(images)}")
    return np.asarray(images[:count], np.float32)


class BestGenerator(keras.callbacks.Callback):
    """Saves the GAN's generator, on its own, whenever FID improves on best."""

    def __init__(self, state: TrainingState, best: float | None):
        super().__init__()
        self.path, self.score_path, self.best = state.best_path, state.score_path, best

    def on_epoch_end(self, epoch, logs=None):
        if self.best is None or logs["fid"] < self.best:
            previous = "nothing" if self.best is None else f"{self.best:.2f}"
            logger.info("epoch %d: FID improved from %s to %.2f; saving the generator to %s", epoch + 1, previous, logs["fid"], self.path)
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


def train(data: Path, params: TrainGanParams, seed: int, classifier: keras.Model, state: TrainingState, extra_callbacks: list) -> DCGAN:
    """Fit the DCGAN; the best generator by validation FID is kept in state. Returns the GAN."""
    keras.utils.set_random_seed(seed)
    images = sample_images(load_split(data, "train")[0], params.max_images, seed)
    real_images = fid_images(load_split(data, "val")[0], params.fid_samples, "val")
    monitor = GanMonitor(feature_extractor(classifier), real_images, state.directory / "samples", params.latent_dim, seed)
    gan = DCGAN(params.latent_dim, images.shape[1:], seed)
    gan.compile(params.learning_rate, params.beta_1)
    # No validation_data: a GAN has no validation loss; FID on validation images takes its place.
    gan.fit(images, batch_size=params.batch_size, epochs=params.epochs, callbacks=[monitor, *generator_callbacks(state), *extra_callbacks], verbose=2)
    return gan


def publish_samples(state: TrainingState, directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(state.directory / "samples", directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output, e.g. data/processed")
    parser.add_argument("--feature-model", type=Path, required=True, help="the FID feature extractor, e.g. models/cnn/best.keras")
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/gan")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/gan")
    parser.add_argument("--state-dir", type=Path, default=Path(".state/gan"), help="checkpoints for resuming")
    args = parser.parse_args()
    params = load_params(args.params)
    # One device, float32: the GAN's own train_step averages its losses per device, which a
    # MirroredStrategy would sum across GPUs, and it does no loss scaling for float16.
    accelerator, _ = configure(params.accelerator, distribute=False, mixed_precision=False)
    section, data_key, feature_key = params.train_gan.model_dump(), str(args.data), str(args.feature_model)
    # Another feature model measures FID on another scale: such state must not be resumed.
    fingerprint = {"params": section, "seed": params.seed, "data": dvc_hash(data_key), "feature_model": dvc_hash(feature_key)}
    state = TrainingState(args.state_dir, "fid", "min", fingerprint)
    with training_run("train_gan", state.directory, {"train_gan": section, "seed": params.seed}, [data_key, feature_key]):
        mlflow.set_tags(accelerator.tags())
        classifier = load_keras(args.feature_model)
        if not state.fit_finished:
            train(args.data, params.train_gan, params.seed, classifier, state, [EpochMetrics()])
            state.finish_fit()
        noise = np.random.default_rng(params.seed).standard_normal((4, params.train_gan.latent_dim)).astype(np.float32)
        best = load_keras(state.best_path)
        reference = log_keras_model(state.best_path, "gan", noise, best.predict(noise, verbose=0) * 255, {"output_scale": 255.0})
        reference["latent_dim"] = params.train_gan.latent_dim
        publish_samples(state, args.plots / "samples")
        state.publish(args.model_dir / "best.keras", args.plots / "history.csv")
        write_json(args.model_dir / "mlflow.json", reference)


if __name__ == "__main__":
    run_stage(main)
