import math

import numpy as np
import pytest
import tensorflow as tf

from imagepipe.core.sections import AugmentationParams
from imagepipe.training.augmentation import (
    augment,
    augmented,
    inverse_affine,
    is_enabled,
)

SIZE = tf.constant([28, 28])
IMAGES = tf.constant(np.random.default_rng(0).random((4, 28, 28, 1)), tf.float32)


def params(**changes) -> AugmentationParams:
    values = {
        "enabled": True,
        "rotation_degrees": 0.0,
        "zoom": 0.0,
        "width_shift": 0.0,
        "height_shift": 0.0,
        "horizontal_flip": False,
    }
    return AugmentationParams.model_validate(values | changes)


def warp(angle=0.0, zoom=1.0, shift=(0.0, 0.0), flip=0.0, images=IMAGES) -> np.ndarray:
    n = images.shape[0]
    transforms = inverse_affine(
        tf.fill([n], angle), tf.fill([n], zoom), tf.constant([shift] * n, tf.float32), tf.fill([n], flip), SIZE
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=SIZE,
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="NEAREST",
    ).numpy()


def test_the_warp_is_exact_for_whole_pixel_moves():
    pixels = IMAGES.numpy()
    np.testing.assert_array_equal(warp(), pixels)
    np.testing.assert_array_equal(warp(flip=1.0), pixels[:, :, ::-1])
    # A shift of (+3, -2) moves content 3 pixels right and 2 up.
    np.testing.assert_array_equal(warp(shift=(3.0, -2.0))[:, :-2, 3:], pixels[:, 2:, :-3])
    quarter = warp(angle=math.pi / 2)
    assert any(np.array_equal(quarter, np.rot90(pixels, k, axes=(1, 2))) for k in (1, 3))


def test_the_flip_comes_after_the_other_moves():
    shifted = warp(shift=(3.0, 0.0))
    np.testing.assert_array_equal(warp(shift=(3.0, 0.0), flip=1.0), shifted[:, :, ::-1])


def test_draws_stay_within_the_ranges():
    images = tf.ones((64, 28, 28, 1))
    # A zoom of at most 10% and no other move keeps the centre pixel and the image's mass close.
    zoomed = augment(images, params(zoom=0.1), tf.constant([1, 2], tf.int64)).numpy()
    assert (zoomed[:, 14, 14] == 1).all()
    assert 0.8 < zoomed.mean() <= 1.0


def test_same_key_same_warp_and_new_draws_every_epoch():
    settings = params(rotation_degrees=10.0, zoom=0.1, width_shift=0.1, height_shift=0.1, horizontal_flip=True)
    key = tf.constant([1, 2], tf.int64)
    np.testing.assert_array_equal(augment(IMAGES, settings, key), augment(IMAGES, settings, key))
    data = tf.data.Dataset.from_tensor_slices((IMAGES, tf.zeros(4))).batch(4)
    first, second = (next(iter(augmented(data, settings, seed=7)))[0].numpy() for _ in range(2))
    np.testing.assert_array_equal(first, second)  # a new pipeline with the same seed: the same run
    pipeline = augmented(data, settings, seed=7)
    epochs = [next(iter(pipeline))[0].numpy() for _ in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, False),
        ({"horizontal_flip": True}, True),
        ({"zoom": 0.1}, True),
        ({"enabled": False, "zoom": 0.1}, False),
    ],
)
def test_augmentation_is_on_only_when_enabled_with_something_to_do(changes, expected):
    assert is_enabled(params(**changes)) is expected
