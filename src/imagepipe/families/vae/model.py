"""The convolutional VAE (keras-io's "Variational AutoEncoder", made size-agnostic): an encoder
to the mean and log-variance of q(z | x), a sample by reparameterisation, and a decoder back to
pixels; the loss is the reconstruction's binary cross-entropy summed per image plus beta times
KL(q(z | x) || N(0, I)), averaged over the batch (with beta 1, the negative ELBO).

`VAE` trains and validates with its own steps and `Mean` trackers (`loss`, the val_loss that
keeps the best epoch, `reconstruction_loss`, `kl_loss`). What is saved is `inference_model`, a
functional model of built-in layers only (pixels → the decoder at the mean), holding the
`encoder` and `decoder` as nested models: it loads with safe_mode without this package, and
the decoder alone is the served generator.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from imagepipe.families.anomaly.networks import checked_shape, decoder, encoded_features

# Keeps log(p) and log(1 - p) finite where the sigmoid saturates.
EPSILON = 1e-7


def encoder(image_shape: tuple[int, ...], latent_dim: int) -> keras.Model:
    """Pixels → [mean, log-variance] of the latent Gaussian, each (n, latent_dim)."""
    pixels = keras.Input(checked_shape(image_shape), name="pixels")
    features = encoded_features(pixels)
    mean = layers.Dense(latent_dim, name="z_mean")(features)
    log_variance = layers.Dense(latent_dim, name="z_log_var")(features)
    return keras.Model(pixels, [mean, log_variance], name="encoder")


def kl_divergence(mean, log_variance):
    """Per example KL(N(mean, exp(log_variance)) || N(0, I)), summed over the latent dimensions."""
    return -0.5 * ops.sum(1.0 + log_variance - ops.square(mean) - ops.exp(log_variance), axis=-1)


def reconstruction_loss(images, reconstructions):
    """Per image binary cross-entropy of the reconstruction (probabilities) to the pixels, summed."""
    probabilities = ops.clip(reconstructions, EPSILON, 1.0 - EPSILON)
    cross_entropy = -(images * ops.log(probabilities) + (1.0 - images) * ops.log(1.0 - probabilities))
    return ops.sum(cross_entropy, axis=tuple(range(1, len(cross_entropy.shape))))


@keras.saving.register_keras_serializable(package="imagepipe")
class VAE(keras.Model):
    """Encoder and decoder trained on the beta-weighted negative ELBO; called, it reconstructs
    from the latent mean (no sampling)."""

    def __init__(self, image_shape: tuple[int, ...], latent_dim: int, beta: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.latent_dim = checked_shape(image_shape), int(latent_dim)
        self.beta, self.seed = float(beta), int(seed)
        self.encoder = encoder(self.image_shape, self.latent_dim)
        self.decoder = decoder(self.latent_dim, self.image_shape)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True  # both parts are built; BackupAndRestore needs a built model

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "beta": self.beta,
            "seed": self.seed,
        }

    @property
    def metrics(self) -> list:
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, inputs, training: bool = False):
        mean, _ = self.encoder(inputs, training=training)
        return self.decoder(mean, training=training)

    def losses_of(self, images, training: bool) -> tuple:
        """(loss, reconstruction loss, KL), batch means, from one sample of z per image."""
        mean, log_variance = self.encoder(images, training=training)
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        reconstructions = self.decoder(mean + ops.exp(0.5 * log_variance) * noise, training=training)
        reconstruction = ops.mean(reconstruction_loss(images, reconstructions))
        kl = ops.mean(kl_divergence(mean, log_variance))
        return reconstruction + self.beta * kl, reconstruction, kl

    def train_step(self, images):
        with tf.GradientTape() as tape:
            loss, reconstruction, kl = self.losses_of(images, training=True)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self.tracked(loss, reconstruction, kl)

    def test_step(self, images):
        return self.tracked(*self.losses_of(images, training=False))

    def tracked(self, loss, reconstruction, kl) -> dict:
        for tracker, value in zip(self.metrics, (loss, reconstruction, kl), strict=True):
            tracker.update_state(value)
        return {tracker.name: tracker.result() for tracker in self.metrics}


def inference_model(vae: VAE) -> keras.Model:
    """The saved form of vae: pixels → the decoder at the latent mean, sharing vae's layers."""
    pixels = keras.Input(vae.image_shape, name="pixels")
    mean, _ = vae.encoder(pixels)
    return keras.Model(pixels, vae.decoder(mean), name="vae")
