"""How good a GAN's images are: FID, sample grids, and the callback that records both each epoch.

FID (Fréchet Inception Distance, here with the pipeline's CNN in place of Inception) is the
Fréchet distance between Gaussians fitted to the CNN's `features` activations of real and
generated images: lower is better, 0 for identical distributions.
"""

import logging
import warnings
from pathlib import Path

import keras
import mlflow
import numpy as np
import scipy.linalg
from matplotlib.figure import Figure

from imagepipe.core.errors import StageError
from imagepipe.models.heads import feature_model

logger = logging.getLogger(__name__)
GRID_SIDE = 4


def feature_extractor(classifier: keras.Model) -> keras.Model:
    return feature_model(classifier, "fid_features")


def frechet_distance(real_features: np.ndarray, generated_features: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½) of the two sets' Gaussian fits."""
    real_features, generated_features = (
        np.asarray(real_features, np.float64),
        np.asarray(generated_features, np.float64),
    )
    real_covariance, generated_covariance = (
        np.cov(real_features, rowvar=False),
        np.cov(generated_features, rowvar=False),
    )
    with warnings.catch_warnings():
        # ReLU units that never fire make the covariances singular; sqrtm warns, yet its trace
        # matched an eigenvalue-based computation to 3 decimals on the pipeline's CNN features.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(real_covariance @ generated_covariance)
    # The product of two covariances has a real root; round-off leaves tiny imaginary parts.
    root = np.real(root)
    difference = real_features.mean(axis=0) - generated_features.mean(axis=0)
    return float(difference @ difference + np.trace(real_covariance + generated_covariance - 2 * root))


def fid(
    extractor: keras.Model,
    real_images: np.ndarray,
    generated_images: np.ndarray,
    batch_size: int = 256,
) -> float:
    if real_images.shape[1:] != tuple(extractor.input_shape[1:]):
        raise StageError(
            f"the FID feature model takes images of shape {extractor.input_shape[1:]}, got {real_images.shape[1:]}"
        )
    features = [
        extractor.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
        for images in (real_images, generated_images)
    ]
    return frechet_distance(*features)


def sample_grid(images: np.ndarray, title: str = "") -> Figure:
    """A 4×4 grid of the first 16 images (pixels in [0, 1])."""
    figure = Figure(figsize=(6, 6.3))
    axes = list(figure.subplots(GRID_SIDE, GRID_SIDE).flat)
    for axis in axes:
        axis.axis("off")
    # images may hold fewer than the grid's 16 cells (the rest stay blank) or more (only the
    # first 16 are shown).
    for axis, image in zip(axes, images, strict=False):
        axis.imshow(
            image.squeeze(-1) if image.shape[-1] == 1 else image,
            cmap="gray",
            vmin=0,
            vmax=1,
        )
    figure.suptitle(title)
    figure.tight_layout()
    return figure


class GanMonitor(keras.callbacks.Callback):
    """Each epoch: a sample grid from fixed noise (PNG + MLflow), and `fid` into the logs.

    Fixed noise, for the grids and for FID alike, makes epochs comparable. Put it before the
    callbacks that read `fid` (checkpoints, CSV and MLflow loggers): they share the logs.
    """

    def __init__(
        self,
        extractor: keras.Model,
        real_images: np.ndarray,
        directory: Path,
        latent_dim: int,
        seed: int,
    ):
        super().__init__()
        self.extractor, self.real_images, self.directory = (
            extractor,
            np.asarray(real_images, np.float32),
            Path(directory),
        )
        rng = np.random.default_rng(seed)
        self.grid_noise = rng.standard_normal((GRID_SIDE**2, latent_dim)).astype(np.float32)
        self.fid_noise = rng.standard_normal((len(real_images), latent_dim)).astype(np.float32)

    def on_epoch_end(self, epoch, logs=None):
        generator = self.model.generator
        name = f"epoch_{epoch + 1:03d}.png"  # epoch_001.png is after the first epoch
        figure = sample_grid(generator.predict(self.grid_noise, verbose=0), f"after epoch {epoch + 1}")
        self.directory.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.directory / name, dpi=80)
        if mlflow.active_run() is not None:
            mlflow.log_figure(figure, f"samples/{name}")
        logs["fid"] = fid(
            self.extractor,
            self.real_images,
            generator.predict(self.fid_noise, batch_size=256, verbose=0),
        )
        logger.info(
            "epoch %d: FID %.2f on %d validation images",
            epoch + 1,
            logs["fid"],
            len(self.real_images),
        )
