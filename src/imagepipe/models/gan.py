"""The DCGAN (TensorFlow's DCGAN tutorial, as the course teaches it): generator, discriminator
and the keras.Model that trains them in turn. Its FID and sample grids are in gan_quality.

Both networks work on the pipeline's pixels in [0, 1]: the generator's tanh output, in
[-1, 1], is mapped to (g + 1) / 2 by its last layer, and the discriminator's first layer maps
pixels back with x * 2 - 1, so a saved generator is noise in, [0, 1] pixels out.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from imagepipe.core.errors import StageError


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


@keras.saving.register_keras_serializable(package="imagepipe")
class MinibatchStddev(layers.Layer):
    """Appends one channel: the batch's mean per-feature standard deviation (Karras et al. 2018,
    Progressive Growing of GANs). A batch of near-copies shows a low value, so the
    discriminator can tell a generator that repeats itself from real data, and the generator
    is pushed towards variety."""

    def call(self, inputs):
        spread = ops.mean(ops.sqrt(ops.var(inputs, axis=0) + 1e-8))
        return ops.concatenate([inputs, ops.ones_like(inputs[..., :1]) * spread], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


def discriminator(image_shape: tuple, dropout_rate: float = 0.3, minibatch_stddev: bool = False) -> keras.Model:
    """Pixels in [0, 1] → Conv2D + LeakyReLU + Dropout ×2 → (MinibatchStddev) → one logit
    (real > 0 > fake)."""
    pixels = keras.Input(image_shape, name="pixels")
    x = layers.Rescaling(2.0, offset=-1.0)(pixels)
    for filters in (64, 128):
        x = layers.Conv2D(filters, 5, strides=2, padding="same")(x)
        x = layers.Dropout(dropout_rate)(layers.LeakyReLU(0.2)(x))
    if minibatch_stddev:
        x = MinibatchStddev(name="minibatch_stddev")(x)
    return keras.Model(pixels, layers.Dense(1, name="logit")(layers.Flatten()(x)), name="discriminator")


class DCGAN(keras.Model):
    """Alternating updates: the discriminator on a real and a fake batch, then the generator."""

    def __init__(self, latent_dim: int, image_shape: tuple, seed: int, minibatch_stddev: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.generator, self.discriminator = (
            generator(latent_dim, image_shape),
            discriminator(image_shape, minibatch_stddev=minibatch_stddev),
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.real_target = 1.0
        self.loss_function = keras.losses.BinaryCrossentropy(from_logits=True)
        # The metric names d_loss and g_loss are the keys in history.csv and MLflow.
        self.discriminator_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # the two sub-models are built; BackupAndRestore needs a built model

    def compile(
        self,
        learning_rate: float,
        beta_1: float,
        discriminator_learning_rate: float | None = None,
        label_smoothing: float = 0.0,
        **kwargs,
    ) -> None:
        """learning_rate is the generator's, and the discriminator's unless it has its own.
        label_smoothing lowers the discriminator's target for real images (one-sided, as in
        Salimans et al. 2016), so it cannot grow overconfident on them."""
        super().compile(optimizer=None, **kwargs)
        self.real_target = 1.0 - label_smoothing
        self.discriminator_optimizer = keras.optimizers.Adam(
            discriminator_learning_rate or learning_rate, beta_1=beta_1
        )
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
            real_targets = tf.fill(tf.shape(real_logits), self.real_target)
            discriminator_loss = self.loss_function(real_targets, real_logits) + self.loss_function(
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
                strict=True,
            )
        )
