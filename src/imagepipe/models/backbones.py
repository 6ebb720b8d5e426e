"""Backbones for transfer learning: this pipeline's own CNN, or a keras.applications network.

`pipeline_cnn` is `models/cnn/best.keras` cut at its `features` layer: it takes the pipeline's
pixels in [0, 1] as they are. The keras.applications backbones (include_top=False, no pooling)
get input-adaptation layers in front, all built-in so a saved model loads with safe_mode=True
and in the MLflow serving process, which has none of this project's code: Resizing to
input_size, grayscale repeated into 3 channels, then the backbone's own `preprocess_input` as
Rescaling layers on [0, 1] pixels ("tf": x * 2 - 1; "caffe": RGB to BGR, 0..255, minus the
ImageNet BGR mean; EfficientNet rescales inside the network, so it gets 0..255).

`weights`: "imagenet" (Keras downloads to, or reads from, $KERAS_HOME/models, by default
~/.keras/models), "none" (random initialisation), or the path of a weights file.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from imagepipe.core.errors import StageError
from imagepipe.models.heads import feature_model
from imagepipe.models.loading import load_keras

PIPELINE_CNN = "pipeline_cnn"
# keras.applications.imagenet_utils' "caffe" mode subtracts these from BGR pixels in 0..255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class BackboneError(StageError):
    """The backbone cannot be built as configured: a missing file, a bad size or weights."""


@dataclass(frozen=True)
class Application:
    constructor: Callable[..., keras.Model]
    preprocessing: str  # imagenet_utils' mode ("tf", "caffe"), or "0..255" for EfficientNet
    min_size: int


APPLICATIONS = {
    "inception_v3": Application(keras.applications.InceptionV3, "tf", 75),
    "mobilenet_v2": Application(keras.applications.MobileNetV2, "tf", 32),
    "efficientnet_b0": Application(keras.applications.EfficientNetB0, "0..255", 32),
    "resnet50": Application(keras.applications.ResNet50, "caffe", 32),
}


@dataclass(frozen=True)
class Backbone:
    """The transferable base and the layers that adapt the pipeline's pixels to it."""

    name: str
    base: keras.Model
    input_size: int | None  # None: the base takes the pipeline's pixels as they are

    def adapt(self, pixels):
        if self.input_size is not None:
            return adapt_inputs(pixels, self.name, self.input_size)
        expected = tuple(self.base.input_shape[1:])
        if tuple(pixels.shape[1:]) != expected:
            raise BackboneError(
                f"the task's images are {tuple(pixels.shape[1:])} but {self.name} takes {expected}; "
                "make data/transfer and the CNN with the same `image` params"
            )
        return pixels

    def unfreeze_top(self, count: int) -> None:
        """Make the base's top count layers trainable, except BatchNormalization (Keras's fine-tuning guide)."""
        self.base.trainable = True
        for position, layer in enumerate(self.base.layers):
            layer.trainable = position >= len(self.base.layers) - count and not isinstance(
                layer, layers.BatchNormalization
            )

    def fresh(self) -> "Backbone":
        """The same architecture, newly initialised and all trainable: the from-scratch yardstick."""
        base = keras.models.clone_model(self.base)
        # clone_model copies the trainable flags (freezing and fine-tuning set them), and the
        # model's own flag does not reach its layers: set both.
        base.trainable = True
        for layer in base.layers:
            layer.trainable = True
        return Backbone(self.name, base, self.input_size)


def build_backbone(name: str, weights: str, input_size: int, backbone_model: Path) -> Backbone:
    if name == PIPELINE_CNN:
        if weights != "none":
            raise BackboneError(
                f"train_transfer.weights is {weights!r}, but backbone pipeline_cnn takes its weights "
                f"from {backbone_model}; set weights: none"
            )
        return Backbone(name, pipeline_backbone(backbone_model), None)
    return Backbone(name, application_backbone(name, weights, input_size), input_size)


def pipeline_backbone(path: Path) -> keras.Model:
    """The pipeline's CNN up to its `features` layer: pixels in [0, 1] in, feature vector out."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"backbone pipeline_cnn needs the trained CNN at {path}; run `dvc repro train_cnn` first")
    return feature_model(load_keras(path), PIPELINE_CNN)


def application_backbone(name: str, weights: str, input_size: int) -> keras.Model:
    application = APPLICATIONS[name]
    if input_size < application.min_size:
        raise BackboneError(f"train_transfer.input_size is {input_size}; {name} needs at least {application.min_size}")
    source = resolve_weights(weights)
    try:
        return application.constructor(
            include_top=False,
            weights=source,
            input_shape=(input_size, input_size, 3),
            pooling=None,
        )
    except ValueError as error:
        # Keras raises ValueError when a weights file does not fit the architecture.
        raise BackboneError(
            f"cannot load train_transfer.weights {weights!r} into {name} at input_size {input_size}: {error}"
        ) from None


def resolve_weights(weights: str) -> str | None:
    """What keras.applications takes: "imagenet", None, or an existing weights file's path."""
    if weights in ("imagenet", "none"):
        return None if weights == "none" else weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneError(
            f"train_transfer.weights: no weights file at {path}; allowed: imagenet, none, "
            "or the path of a .weights.h5, .h5 or .keras file"
        )
    return str(path)


def adapt_inputs(pixels, name: str, input_size: int):
    """Pipeline pixels in [0, 1] (1 or 3 channels) to what the named backbone expects."""
    x = layers.Resizing(input_size, input_size, name="resize")(pixels)
    if x.shape[-1] == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    mode = APPLICATIONS[name].preprocessing
    if mode == "tf":
        return layers.Rescaling(2.0, offset=-1.0, name="preprocess_tf")(x)
    if mode == "caffe":
        # keras.ops in a Functional model serialize as built-in operations (no Lambda layer).
        x = keras.ops.flip(x, axis=-1)
        return layers.Rescaling(255.0, offset=[-mean for mean in CAFFE_MEAN_BGR], name="preprocess_caffe")(x)
    return layers.Rescaling(255.0, name="to_0_255")(x)
