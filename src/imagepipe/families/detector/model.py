"""A one-stage, anchor-free detector (in the spirit of YOLO and FCOS) and its loss.

The backbone halves the canvas log2(stride) times, each level a strided 3×3 Conv-BN-ReLU
then a plain one, its filters doubling per level; a shared 3×3 block feeds three 1×1 heads at
every cell: objectness, box and class logits, concatenated in the grid's channel layout
(imagepipe.families.detector.grid). Inputs are pixels in [0, 1].
"""

import math

import keras
from keras import layers, ops

from imagepipe.core.errors import StageError
from imagepipe.families.detector.grid import BOX, CLASSES, OBJECTNESS, grid_shape

# RetinaNet's focal loss constants, and its prior: objectness starts at 1% everywhere, so the
# many empty cells do not swamp the first steps (Lin et al., 2017, section 4.1).
FOCAL_ALPHA, FOCAL_GAMMA, PRIOR = 0.25, 2.0, 0.01
BOX_WEIGHT = 2.0
# A training run is a few hundred steps: with Keras's default momentum (0.99) the moving
# statistics would still be mostly their initial values when the best epoch is saved.
NORM_MOMENTUM = 0.9


def conv_block(x: keras.KerasTensor, filters: int, strides: int, name: str) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=NORM_MOMENTUM, name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def detector(input_shape: tuple[int, ...], num_classes: int, stride: int, filters: int) -> keras.Model:
    """Pixels (n, height, width, channels) in [0, 1] → raw grid (n, height/stride, width/stride, 5 + num_classes)."""
    if len(input_shape) != 3:
        raise StageError(f"the detector takes images (height, width, channels), got the shape {tuple(input_shape)}")
    grid_shape(input_shape, stride)
    if num_classes < 1:
        raise StageError("a detector needs at least one item class")
    pixels = keras.Input(input_shape, name="pixels")
    x, levels = pixels, int(math.log2(stride))
    for level in range(levels):
        x = conv_block(x, filters * 2**level, 2, f"down{level}")
        x = conv_block(x, filters * 2**level, 1, f"level{level}")
    x = conv_block(x, filters * 2 ** max(levels - 1, 0), 1, "head")
    prior = keras.initializers.Constant(-math.log((1 - PRIOR) / PRIOR))
    objectness = layers.Conv2D(1, 1, bias_initializer=prior, name="objectness")(x)
    box = layers.Conv2D(4, 1, name="box")(x)
    classes = layers.Conv2D(num_classes, 1, name="classes")(x)
    grid = layers.Concatenate(name="grid")([objectness, box, classes])
    return keras.Model(pixels, grid, name="detector")


def detection_loss(targets, outputs):
    """Focal loss on objectness over all cells, L1 on the box and cross-entropy on the class in
    the cells that hold an item; summed and divided by the number of such cells (at least 1)."""
    positive = targets[..., OBJECTNESS]
    logits = outputs[..., OBJECTNESS]
    probability = ops.sigmoid(logits)
    matched = positive * probability + (1 - positive) * (1 - probability)
    alpha = positive * FOCAL_ALPHA + (1 - positive) * (1 - FOCAL_ALPHA)
    focal = alpha * (1 - matched) ** FOCAL_GAMMA * ops.binary_crossentropy(positive, logits, from_logits=True)
    box = ops.sum(ops.abs(targets[..., BOX] - outputs[..., BOX]), axis=-1)
    label = ops.categorical_crossentropy(targets[..., CLASSES:], outputs[..., CLASSES:], from_logits=True)
    total = ops.sum(focal) + ops.sum(positive * (BOX_WEIGHT * box + label))
    return total / ops.maximum(ops.sum(positive), 1.0)
