"""The transfer classifier: a frozen backbone, cut where its features still fit the target,
under a new head."""

import dataclasses

import keras
from keras import layers

from imagepipe.core.sections import TrainTransferParams
from imagepipe.models.backbones import Backbone, BackboneError
from imagepipe.models.heads import probabilities


def cut_at(backbone: Backbone, layer: str | None) -> Backbone:
    """The backbone up to the named layer's output (None: the whole backbone).

    A source network's top layers are the most specific to its own task; on a distant target the
    more generic features below them transfer better (Yosinski et al., 2014; the Keras course cuts
    InceptionV3 at mixed7 for the same reason).
    """
    if layer is None:
        return backbone
    names = [candidate.name for candidate in backbone.base.layers]
    if layer not in names:
        raise BackboneError(
            f"train_transfer.cut_layer is {layer!r}, but {backbone.name} has no such layer; "
            f"its layers: {', '.join(names)} (or null: the whole backbone)"
        )
    base = keras.Model(backbone.base.inputs, backbone.base.get_layer(layer).output, name=backbone.base.name)
    return dataclasses.replace(backbone, base=base)


def classifier(
    backbone: Backbone,
    input_shape: tuple,
    num_classes: int,
    params: TrainTransferParams,
    frozen: bool,
) -> keras.Model:
    pixels = keras.Input(input_shape, name="pixels")
    # A frozen base runs in inference mode, so its batch norm statistics stay ImageNet's (or the CNN's).
    features = (
        backbone.base(backbone.adapt(pixels), training=False) if frozen else backbone.base(backbone.adapt(pixels))
    )
    if len(features.shape) == 4:
        features = layers.GlobalAveragePooling2D(name="pooling")(features)
    x = layers.Dropout(params.dropout_rate)(features)
    x = layers.Dense(params.dense_units, activation="relu", name="head")(x)
    outputs = probabilities(num_classes)(x)
    return keras.Model(pixels, outputs, name=f"{backbone.name}_{'transfer' if frozen else 'scratch'}")


def head_of(model: keras.Model, backbone: Backbone) -> keras.Model:
    """The layers the classifier applies after its base, as a model over the base's output.

    The head shares the classifier's layers and weights: training it trains the classifier.
    """
    features = keras.Input(backbone.base.output.shape[1:], name="features")
    x = features
    for layer in model.layers[model.layers.index(backbone.base) + 1 :]:
        x = layer(x)
    return keras.Model(features, x, name="head_on_features")


def compile_with(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
