"""How good a GAN's images are: FID, precision and recall, sample grids, and the callback that
records them each epoch.

FID (Fréchet Inception Distance, here with the pipeline's CNN in place of Inception) is the
Fréchet distance between Gaussians fitted to the CNN's `features` activations of real and
generated images: lower is better, 0 for identical distributions. One number mixes two
failures, so precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
Metric for Assessing Generative Models") split it, in the same features: precision is the
share of generated images that fall inside the real images' manifold (fidelity: blurry or
broken samples fall outside), recall the share of real images inside the generated images'
manifold (variety: a generator that repeats a few images covers little of it). Each manifold
is the union of balls around a set's points, each ball reaching that point's k-th nearest
neighbour in the same set.
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
# The paper's number of neighbours per ball.
NEIGHBOURS = 3
# Distance blocks of at most this many entries (float64), so memory stays bounded for any
# sample count.
BLOCK_ENTRIES = 2**22


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


def _checked_sets(real: np.ndarray, generated: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    if neighbours < 1:
        raise StageError(f"precision and recall need at least 1 neighbour, got {neighbours}")
    sets = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    for name, features in zip(("real", "generated"), sets, strict=True):
        if features.ndim != 2 or len(features) <= neighbours:
            raise StageError(
                f"precision and recall need the {name} features as a 2-D array (samples, features) with more "
                f"than {neighbours} samples (the neighbours), got shape {features.shape}"
            )
        if not np.isfinite(features).all():
            raise StageError(f"the {name} features hold NaN or infinite values")
    if sets[0].shape[1] != sets[1].shape[1]:
        raise StageError(
            f"real and generated features differ in width ({sets[0].shape[1]} vs {sets[1].shape[1]}); "
            "take both from the same feature layer"
        )
    return sets


def _squared_distances(queries: np.ndarray, points: np.ndarray):
    """Yields (start, block of squared distances from queries[start:...] to every point)."""
    rows = max(1, BLOCK_ENTRIES // len(points))
    point_norms = np.einsum("ij,ij->i", points, points)
    for start in range(0, len(queries), rows):
        block = queries[start : start + rows]
        squared = np.einsum("ij,ij->i", block, block)[:, None] + point_norms[None, :] - 2 * block @ points.T
        yield start, np.maximum(squared, 0)


def _radii(points: np.ndarray, neighbours: int) -> np.ndarray:
    """Each point's squared distance to its k-th nearest other point (itself is the 0th)."""
    radii = np.empty(len(points))
    for start, squared in _squared_distances(points, points):
        radii[start : start + len(squared)] = np.partition(squared, neighbours, axis=1)[:, neighbours]
    return radii


def _coverage(queries: np.ndarray, points: np.ndarray, neighbours: int) -> float:
    """The share of queries inside at least one of the points' k-nearest-neighbour balls."""
    radii, inside = _radii(points, neighbours), 0
    for _, squared in _squared_distances(queries, points):
        inside += int(np.count_nonzero((squared <= radii[None, :]).any(axis=1)))
    return inside / len(queries)


def precision_recall(
    real_features: np.ndarray, generated_features: np.ndarray, neighbours: int = NEIGHBOURS
) -> tuple[float, float]:
    """Improved precision and recall, both in [0, 1], higher is better: precision is the share of
    generated points inside the real manifold, recall the share of real points inside the
    generated manifold."""
    real, generated = _checked_sets(real_features, generated_features, neighbours)
    return _coverage(generated, real, neighbours), _coverage(real, generated, neighbours)


def quality(real_features: np.ndarray, generated_features: np.ndarray) -> dict[str, float]:
    """FID, precision and recall of one generated set against one real set, in the same features."""
    precision, recall = precision_recall(real_features, generated_features)
    return {"fid": frechet_distance(real_features, generated_features), "precision": precision, "recall": recall}


def embed(extractor: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    if images.shape[1:] != tuple(extractor.input_shape[1:]):
        raise StageError(
            f"the FID feature model takes images of shape {extractor.input_shape[1:]}, got {images.shape[1:]}"
        )
    return extractor.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)


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
    """Each epoch: a sample grid from fixed noise (PNG + MLflow), and `fid`, `precision` and
    `recall` into the logs.

    Fixed noise, for the grids and for the metrics alike, makes epochs comparable. Put it before
    the callbacks that read `fid` (checkpoints, CSV and MLflow loggers): they share the logs.
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
        self.extractor, self.directory = extractor, Path(directory)
        # The real images do not change between epochs: embedded once.
        self.real_features, self.real_count = embed(extractor, np.asarray(real_images, np.float32)), len(real_images)
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
        generated = embed(self.extractor, generator.predict(self.fid_noise, batch_size=256, verbose=0))
        logs.update(quality(self.real_features, generated))
        logger.info(
            "epoch %d: FID %.2f, precision %.3f, recall %.3f on %d validation images",
            epoch + 1,
            logs["fid"],
            logs["precision"],
            logs["recall"],
            self.real_count,
        )
