"""The course's ImageDataGenerator augmentation (rotation, zoom, shifts, flips) as one affine warp.

Keras's RandomRotation, RandomZoom and RandomTranslation each resample the whole batch; here
the three (and the flip) are composed into a single matrix per image and applied in one
`ImageProjectiveTransformV3` call, with nearest-pixel filling as ImageDataGenerator does.
The random draws are stateless, keyed by a seeded stream that changes every epoch, so a run
is reproducible and the map can run in parallel.
"""

import math

import tensorflow as tf

from imagepipe.core.sections import AugmentationParams


def is_enabled(params: AugmentationParams) -> bool:
    return params.enabled and any(
        (
            params.rotation_degrees,
            params.zoom,
            params.width_shift,
            params.height_shift,
            params.horizontal_flip,
        )
    )


def inverse_affine(
    angle: tf.Tensor,
    zoom: tf.Tensor,
    shift: tf.Tensor,
    flip: tf.Tensor,
    size: tf.Tensor,
) -> tf.Tensor:
    """Per image, the 8 projective coefficients that map an output pixel back to its source.

    The forward warp zooms by `zoom` and rotates by `angle` about the centre, shifts by `shift`
    pixels (x, y), then mirrors left-right where `flip` is 1. Shapes: (n,), (n,), (n, 2), (n,), (2,).
    """
    centre = (tf.cast(size[::-1], tf.float32) - 1) / 2  # (x, y)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    a0, a1, b0, b1 = cos, sin, -sin, cos
    # Undo the shift, then rotation and zoom about the centre: source = M (out - centre - shift) + centre.
    moved = centre + shift
    a2 = centre[0] - a0 * moved[:, 0] - a1 * moved[:, 1]
    b2 = centre[1] - b0 * moved[:, 0] - b1 * moved[:, 1]
    # The mirror, last forward, comes first backward: the output x becomes 2 cx - x.
    sign = 1 - 2 * flip
    a2, b2 = a2 + flip * a0 * 2 * centre[0], b2 + flip * b0 * 2 * centre[0]
    a0, b0 = a0 * sign, b0 * sign
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def augment(images: tf.Tensor, params: AugmentationParams, seed: tf.Tensor) -> tf.Tensor:
    """A batch (n, height, width, channels), warped at random; seed is a stateless seed pair."""
    n, size = tf.shape(images)[0], tf.shape(images)[1:3]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    rotation = math.radians(params.rotation_degrees)
    angle = tf.random.stateless_uniform([n], seeds[0], -rotation, rotation)
    zoom = tf.random.stateless_uniform([n], seeds[1], 1 - params.zoom, 1 + params.zoom)
    extent = tf.constant([params.width_shift, params.height_shift]) * tf.cast(size[::-1], tf.float32)
    shift = tf.random.stateless_uniform([n, 2], seeds[2], -1.0, 1.0) * extent
    flip = (
        tf.cast(tf.random.stateless_uniform([n], seeds[3]) < 0.5, tf.float32)
        if params.horizontal_flip
        else tf.zeros([n])
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=inverse_affine(angle, zoom, shift, flip, size),
        output_shape=size,
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="NEAREST",
    )


def augmented(batches: tf.data.Dataset, params: AugmentationParams, seed: int) -> tf.data.Dataset:
    """(images, labels) batches with the images warped; new draws every epoch, same draws every run."""
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(batches, keys).map(
        lambda batch, key: (augment(batch[0], params, key), batch[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
