"""The denoising autoencoder: Gaussian noise on the input, while training only, then the
shared convolutional encoder, a `latent_dim` bottleneck and the decoder back to the image.

A functional model of built-in layers: its `.keras` file loads with safe_mode anywhere, and
at inference (predict, serving) the noise layer passes its input through unchanged.
"""

import keras
from keras import layers

from imagepipe.families.anomaly.networks import checked_shape, decoder, encoded_features


def autoencoder(image_shape: tuple[int, ...], latent_dim: int, noise_stddev: float, seed: int = 0) -> keras.Model:
    """Pixels (n, *image_shape) in [0, 1] → their reconstruction, the same shape."""
    shape = checked_shape(image_shape)
    pixels = keras.Input(shape, name="pixels")
    noisy = layers.GaussianNoise(noise_stddev, seed=seed, name="noise")(pixels)
    code = layers.Dense(latent_dim, name="code")(encoded_features(noisy))
    return keras.Model(pixels, decoder(latent_dim, shape)(code), name="autoencoder")
