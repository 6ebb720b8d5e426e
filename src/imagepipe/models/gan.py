"""The DCGAN (TensorFlow's DCGAN tutorial, as the course teaches it) and its FID yardstick.

Both networks work on the pipeline's pixels in [0, 1]: the generator's tanh output, in
[-1, 1], is mapped to (g + 1) / 2 by its last layer, and the discriminator's first layer maps
pixels back with x * 2 - 1, so a saved generator is noise in, [0, 1] pixels out.

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
import tensorflow as tf
from keras import layers
from matplotlib.figure import Figure

from imagepipe.core.errors import StageError
from imagepipe.models.heads import feature_model

logger = logging.getLogger(__name__)
GRID_SIDE = 4


def generator(latent_dim: int, image_shape: tuple) -> keras.Model:
    """Noise → Dense → Reshape to a quarter of the image → Conv2DTranspose ×3 → pixels in [0, 1]."""
    height, width, channels = image_shape
    if height % 4 or width % 4:
        raise StageError(f"the GAN needs image height and width divisible by 4, got {height}×{width}")
    noise = keras.Input((latent_dim,), name="noise")
    x = layers.Dense(height // 4 * width // 4 * 256, use_bias=False)(noise)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    x = layers.Reshape((height // 4, width // 4, 256))(x)
    for filters, strides in ((128, 1), (64, 2)):
        x = layers.Conv2DTranspose(filters, 5, strides=strides, padding="same", use_bias=False)(x)
        x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    x = layers.Conv2DTranspose(channels, 5, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(noise, layers.Rescaling(0.5, offset=0.5, name="pixels")(x), name="generator")


def discriminator(image_shape: tuple, dropout_rate: float = 0.3) -> keras.Model:
    """Pixels in [0, 1] → Conv2D + LeakyReLU + Dropout ×2 → one logit (real > 0 > fake)."""
    pixels = keras.Input(image_shape, name="pixels")
    x = layers.Rescaling(2.0, offset=-1.0)(pixels)
    for filters in (64, 128):
        x = layers.Conv2D(filters, 5, strides=2, padding="same")(x)
        x = layers.Dropout(dropout_rate)(layers.LeakyReLU(0.2)(x))
    return keras.Model(pixels, layers.Dense(1, name="logit")(layers.Flatten()(x)), name="discriminator")


class DCGAN(keras.Model):
    """Alternating updates: the discriminator on a real and a fake batch, then the generator."""

    def __init__(self, latent_dim: int, image_shape: tuple, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.generator, self.discriminator = (
            generator(latent_dim, image_shape),
            discriminator(image_shape),
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_function = keras.losses.BinaryCrossentropy(from_logits=True)
        # The metric names d_loss and g_loss are the keys in history.csv and MLflow.
        self.discriminator_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # the two sub-models are built; BackupAndRestore needs a built model

    def compile(self, learning_rate: float, beta_1: float, **kwargs) -> None:
        super().compile(optimizer=None, **kwargs)
        self.discriminator_optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1)
        self.generator_optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1)
        # Built now so that BackupAndRestore can load their state into them when resuming.
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self) -> list:
        return [self.discriminator_loss_tracker, self.generator_loss_tracker]

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(self.generator(noise, training=True), training=True)
            discriminator_loss = self.loss_function(tf.ones_like(real_logits), real_logits) + self.loss_function(
                tf.zeros_like(fake_logits), fake_logits
            )
        self._apply(tape, discriminator_loss, self.discriminator, self.discriminator_optimizer)
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(noise, training=True), training=True)
            generator_loss = self.loss_function(tf.ones_like(fake_logits), fake_logits)
        self._apply(tape, generator_loss, self.generator, self.generator_optimizer)
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        self.generator_loss_tracker.update_state(generator_loss)
        return {
            "d_loss": self.discriminator_loss_tracker.result(),
            "g_loss": self.generator_loss_tracker.result(),
        }

    @staticmethod
    def _apply(
        tape: tf.GradientTape,
        loss,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
    ) -> None:
        optimizer.apply_gradients(
            zip(
                tape.gradient(loss, model.trainable_variables),
                model.trainable_variables,
            )
        )


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
    for axis, image in zip(axes, images):
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
