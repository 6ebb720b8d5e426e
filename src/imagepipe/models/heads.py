"""Classifier heads and the named feature layer that FID, transfer learning and the GAN read."""

import keras
from keras import layers

from imagepipe.core.errors import StageError

# The classifiers' penultimate layer: the GAN's FID features and the transfer backbone's output.
FEATURE_LAYER = "features"


def probabilities(num_classes: int) -> layers.Dense:
    """The classifiers' softmax output, in float32 even under mixed precision (a float16 softmax
    and loss lose precision; Keras's mixed precision guide does the same)."""
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")


def feature_model(classifier: keras.Model, name: str) -> keras.Model:
    """The classifier cut at its `features` layer: pixels in [0, 1] in, feature vector out."""
    names = [layer.name for layer in classifier.layers]
    if FEATURE_LAYER not in names:
        raise StageError(
            f"{classifier.name} has no layer named {FEATURE_LAYER!r} to cut at; its layers: {', '.join(names)}"
        )
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output, name=name)
