"""The CNN architectures: the course's, and the batch-norm default."""

import keras
from keras import layers

from imagepipe.models.heads import probabilities


def course_cnn(input_shape: tuple, num_classes: int, dropout_rate: float) -> keras.Model:
    """The course's MNIST CNN, as taught (dropout_rate is not part of it and is ignored)."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.Flatten(name="flatten")(x)  # train_transfer.cut_layer names it
    x = layers.Dense(64, activation="relu", name="features")(x)
    return keras.Model(inputs, probabilities(num_classes)(x), name="course_cnn")


def batchnorm_cnn(input_shape: tuple, num_classes: int, dropout_rate: float) -> keras.Model:
    """Three conv blocks (32/64/128 filters) with batch norm, then dropout around Dense 128: the
    course's accuracy in fewer epochs (figures in BENCHMARKS.md, `make bench`)."""
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # Keras's default momentum (0.99) averages over ~100 steps and lags weights that move
        # fast in a short run: the first epochs' moving statistics would be stale; 0.9 follows.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten(name="flatten")(x)  # train_transfer.cut_layer names it
    x = layers.Dropout(dropout_rate)(x)
    x = layers.Dense(128, activation="relu", name="features")(x)
    x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, probabilities(num_classes)(x), name="batchnorm_cnn")


ARCHITECTURES = {"course": course_cnn, "batchnorm": batchnorm_cnn}
