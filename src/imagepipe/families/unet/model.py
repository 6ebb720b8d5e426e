"""The U-Net (Ronneberger et al., 2015) behind a strided stem: an encoder that halves the canvas
`depth` times, a decoder that doubles it back, and at each level a skip connection that hands
the encoder's features to the decoder, so that masks keep sharp edges.

What the scenes make hard is recognition (which class a whole item is), not boundaries, and
recognition is cheap at low resolution. So a single full-resolution Conv-BN-ReLU (`full`) keeps
the edges, a stride-2 convolution (`stem`) brings the canvas to half its size, and the U-Net
proper runs from there, where the same compute buys twice the filters and receptive field. A
last ×2 up-sampling joins the decoder back to `full` (the light full-resolution skip).

Each level is two Conv-BN-ReLU blocks; the encoder's filters double per level down, starting
at 2 × `filters` in the stem; the decoder up-samples with a strided Conv2DTranspose and
concatenates the skip. The last 1×1 convolution gives a softmax over the mask classes
(background first) at every pixel. Inputs are pixels in [0, 1]; any channels, any canvas whose
sides divide by 2**(depth + 1).
"""

import keras
from keras import layers

from imagepipe.core.errors import StageError


def check_canvas(input_shape: tuple[int, ...], depth: int) -> None:
    """A StageError unless input_shape is (height, width, channels), sides divisible by 2**(depth + 1)."""
    if len(input_shape) != 3:
        raise StageError(f"the U-Net takes images (height, width, channels), got the shape {tuple(input_shape)}")
    height, width = input_shape[:2]
    step = 2 ** (depth + 1)
    if height % step or width % step:
        raise StageError(
            f"a U-Net of depth {depth} halves the canvas {depth + 1} times (the stem, then each level): "
            f"its height and width must divide by 2**(depth + 1) = {step}, got {height}×{width}; "
            "change train_unet.depth or the canvas size"
        )


def conv_norm_relu(
    x: keras.KerasTensor, filters: int, name: str, index: str = "", strides: int = 1
) -> keras.KerasTensor:
    """A 3×3 Conv-BN-ReLU; the convolution has no bias, BatchNormalization's offset is one."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
    x = layers.BatchNormalization(name=f"{name}_norm{index}")(x)
    return layers.ReLU(name=f"{name}_relu{index}")(x)


def conv_block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Two 3×3 Conv-BN-ReLU blocks, the second's output named `{name}_relu2`."""
    for index in ("1", "2"):
        x = conv_norm_relu(x, filters, name, index)
    return x


def unet(input_shape: tuple[int, ...], num_classes: int, filters: int, depth: int) -> keras.Model:
    """Pixels (n, height, width, channels) in [0, 1] → class probabilities (n, height, width, num_classes).

    The encoder's level k output (at 1/2**(k+1) of the canvas) is `down{k}_relu2`; the decoder
    joins it back in `skip{k}`, and joins the full-resolution `full_relu` back in `skip_full`.
    """
    check_canvas(input_shape, depth)
    if num_classes < 2:
        raise StageError(f"a segmentation needs 2 mask classes or more (background, an item), got {num_classes}")
    pixels = keras.Input(input_shape, name="pixels")
    full = conv_norm_relu(pixels, filters, "full")
    x, skips = conv_norm_relu(full, 2 * filters, "stem", strides=2), []
    for level in range(depth):
        x = conv_block(x, filters * 2 ** (level + 1), f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = conv_block(x, filters * 2 ** (depth + 1), "bottom")
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(filters * 2 ** (level + 1), 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = conv_block(x, filters * 2 ** (level + 1), f"decode{level}")
    x = layers.Conv2DTranspose(filters, 2, strides=2, name="up_full")(x)
    x = layers.Concatenate(name="skip_full")([x, full])
    x = conv_norm_relu(x, filters, "decode_full")
    probabilities = layers.Conv2D(num_classes, 1, activation="softmax", name="mask")(x)
    return keras.Model(pixels, probabilities, name="unet")
