"""Bring images of any size and channel count to the configured height, width and channels."""

import numpy as np
from PIL import Image

PIL_MODES = {1: "L", 3: "RGB"}


def fit_image(image: Image.Image, height: int, width: int, channels: int) -> np.ndarray:
    """A PIL image (any mode, any size) as a uint8 array of shape (height, width, channels)."""
    if image.mode not in ("L", "RGB"):
        # Palette, alpha and 16-bit images go through RGB so transparency does not turn black.
        image = image.convert("RGBA").convert("RGB") if "A" in image.getbands() else image.convert("RGB")
    image = image.convert(PIL_MODES[channels])
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


def fit_array(images: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """A uint8 batch (N, H, W) or (N, H, W, C) as (N, height, width, channels); no copy when it fits."""
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.shape[1:] == (height, width, channels):
        return images
    if images.shape[1:3] == (height, width):
        return np.repeat(images, channels, axis=-1) if channels == 3 else _to_gray(images)
    mode = PIL_MODES[images.shape[-1]]
    return np.stack(
        [
            fit_image(
                Image.fromarray(image.squeeze(-1) if mode == "L" else image, mode),
                height,
                width,
                channels,
            )
            for image in images
        ]
    )


def _to_gray(images: np.ndarray) -> np.ndarray:
    # ITU-R 601-2 luma, the transform PIL's convert("L") applies.
    gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., np.newaxis]
