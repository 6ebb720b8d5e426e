"""The recurrent classifier: each image read row by row, top to bottom (and bottom to top when
bidirectional), as a sequence of `height` steps of `width × channels` pixels."""

import keras
from keras import layers

from imagepipe.core.sections import TrainRnnParams
from imagepipe.models.heads import FEATURE_LAYER, probabilities

CELLS = {"gru": layers.GRU, "lstm": layers.LSTM}
# The recurrent layer's name: what reads the rows, one step a row.
RECURRENT_LAYER = "rows"


def row_sequence(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(steps, features per step) of images shaped (height, width, channels): one step a row."""
    if len(input_shape) != 3 or not all(isinstance(size, int) and size > 0 for size in input_shape):
        raise ValueError(f"the RNN reads images shaped (height, width, channels); got the input shape {input_shape}")
    height, width, channels = input_shape
    return height, width * channels


def recurrent_layer(cell: str, units: int, bidirectional: bool) -> layers.Layer:
    """The cell over the rows, its last step's output kept (both directions' when bidirectional)."""
    if cell not in CELLS:
        raise ValueError(f"unknown RNN cell {cell!r}; the cells are {', '.join(CELLS)}")
    if not bidirectional:
        return CELLS[cell](units, name=RECURRENT_LAYER)
    return layers.Bidirectional(CELLS[cell](units), name=RECURRENT_LAYER)


def row_rnn(input_shape: tuple[int, ...], num_classes: int, params: TrainRnnParams) -> keras.Model:
    """Pixels in [0, 1] (height, width, channels) in, class probabilities out.

    A dense layer embeds each row, normalised, before the cell reads the sequence, and the
    head reads the cell's last step. On Fashion-MNIST in 5 to 6 epochs, the embedding and the
    normalisation each gained about half a point of test accuracy, and the last step half a
    point over pooling all steps (single-seed runs; seeds differ by about half a point). With
    the defaults (params.yaml) the test accuracy is about 90%.
    """
    steps, row_size = row_sequence(input_shape)
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Reshape((steps, row_size), name="row_sequence")(inputs)
    x = layers.Dense(params.units, activation="relu", name="row_embedding")(x)
    x = layers.LayerNormalization(name="row_norm")(x)
    x = recurrent_layer(params.cell, params.units, params.bidirectional)(x)
    x = layers.Dropout(params.dropout_rate)(x)
    x = layers.Dense(params.units, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(params.dropout_rate)(x)
    return keras.Model(inputs, probabilities(num_classes)(x), name=f"row_{params.cell}")
