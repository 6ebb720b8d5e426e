"""Cutting a backbone where its features still fit the target."""

import keras
import pytest
from keras import layers

from imagepipe.models.backbones import Backbone, BackboneError
from imagepipe.models.transfer import cut_at


def tiny_backbone() -> Backbone:
    pixels = keras.Input((8, 8, 1))
    x = layers.Flatten(name="flatten")(layers.Conv2D(2, 3, name="convolution")(pixels))
    return Backbone("pipeline_cnn", keras.Model(pixels, layers.Dense(4, name="features")(x), name="base"), None)


def test_cut_keeps_the_layers_up_to_the_named_one_and_shares_their_weights():
    backbone = tiny_backbone()
    cut = cut_at(backbone, "flatten")
    assert cut.base.output_shape == (None, 72) and cut.name == backbone.name and cut.input_size is None
    assert cut.base.get_layer("convolution") is backbone.base.get_layer("convolution")
    assert "features" not in [layer.name for layer in cut.base.layers]
    assert cut_at(backbone, None) is backbone


def test_cut_at_a_missing_layer_names_the_layers_there_are():
    with pytest.raises(BackboneError, match=r"cut_layer is 'mixed7'.*its layers: .*convolution, flatten, features"):
        cut_at(tiny_backbone(), "mixed7")
