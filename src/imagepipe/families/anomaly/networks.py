"""The convolutional encoder body and decoder the autoencoder and the VAE are built from.

Any image size works: the encoder halves the canvas with strided convolutions (rounding up),
the decoder doubles it back from the rounded-up size and crops the surplus rows and columns,
so a 28×28×1 or 30×30×3 input comes back at exactly its shape. Pixels are in [0, 1] in and out
(sigmoid), as preprocess stores them.
"""

import math

import keras
from keras import layers

from imagepipe.core.errors import StageError

# Filters of the strided convolutions, canvas halved at each: 28×28 → 14×14 → 7×7. Small
# enough for a few epochs on two CPU cores in the pipeline's budget: twice the filters cost
# more than twice the time per epoch and found the held-out class no better.
FILTERS = (16, 32)


def checked_shape(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """image_shape as (height, width, channels), or a StageError saying what is expected."""
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise StageError(f"the autoencoders take images (height, width, channels), got the shape {tuple(image_shape)}")
    height, width, channels = (int(size) for size in image_shape)
    return height, width, channels


def encoded_features(pixels: keras.KerasTensor) -> keras.KerasTensor:
    """Conv (stride 2, ReLU) per FILTERS, flattened: the features the bottleneck is read from."""
    x = pixels
    for index, filters in enumerate(FILTERS, start=1):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"encoder_conv{index}")(x)
    return layers.Flatten(name="encoder_features")(x)


def decoder(latent_dim: int, image_shape: tuple[int, ...], name: str = "decoder") -> keras.Model:
    """Latent vectors (n, latent_dim) → pixels (n, *image_shape) in [0, 1]: Dense to the encoder's
    smallest canvas, Conv2DTranspose (stride 2) back up, a sigmoid convolution, cropped to size."""
    height, width, channels = checked_shape(image_shape)
    scale = 2 ** len(FILTERS)
    small_height, small_width = math.ceil(height / scale), math.ceil(width / scale)
    latent = keras.Input((latent_dim,), name="latent")
    x = layers.Dense(small_height * small_width * FILTERS[-1], activation="relu", name="decoder_dense")(latent)
    x = layers.Reshape((small_height, small_width, FILTERS[-1]), name="decoder_canvas")(x)
    for index, filters in enumerate(reversed(FILTERS), start=1):
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", activation="relu", name=f"decoder_deconv{index}"
        )(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="decoder_pixels")(x)
    surplus = ((0, small_height * scale - height), (0, small_width * scale - width))
    return keras.Model(latent, layers.Cropping2D(surplus, name="pixels")(x), name=name)
