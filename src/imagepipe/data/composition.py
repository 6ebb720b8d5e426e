"""Composed scenes: items of a classification split placed on a square textured canvas, with a
class mask and a box per item, as multi-digit MNIST sets are made for segmentation and detection.

A split's scenes are planned before any pixel is read: each scene's items, their sides and
where they go (imagepipe.data.placement). `render` then draws a chunk of scenes from its items'
pixels, so memory holds a chunk of items whatever the split's size:

- background: smooth noise and stripes, no brighter than `background_contrast`;
- item: resized with a bilinear filter, keeping its aspect (its longer side is the drawn side).
  Its foreground is its pixels brighter, in any channel, than FOREGROUND_SHARE of its brightest
  pixel (the dark surround of an MNIST-like item is not part of it); only the foreground is
  pasted, so the texture shows around it. An item without such a pixel (all black) is pasted whole;
- mask: class + 1 over each item's foreground. Later items paint over earlier ones on the image
  and the mask alike, so the mask gives the class of each visible pixel;
- box: the item's placed box tightened to its foreground, as pixel edges; it is the whole item's
  extent, also where a later item hides part of it.

Everything is drawn from one numpy Generator, so a seed gives the same scenes.
"""

import functools
from collections.abc import Callable

import numpy as np

from imagepipe.core.sections import ComposeScenesParams
from imagepipe.data.placement import Layout, plan_layout
from imagepipe.data.scenes import SPLITS, Scenes

# An item's pixels brighter than this share of its brightest pixel are its foreground.
FOREGROUND_SHARE = 0.1
# Scenes rendered at a time: bounds the item pixels in memory.
CHUNK_SCENES = 1024
# Cells of the background's noise across the canvas, and the stripes' cycles across it.
NOISE_CELLS = 8
STRIPE_CYCLES = (2.0, 6.0)

ReadItems = Callable[[np.ndarray], np.ndarray]


def scene_counts(params: ComposeScenesParams) -> dict[str, int]:
    """The number of scenes of each split."""
    return {"train": params.train_scenes, "val": params.val_scenes, "test": params.test_scenes}


def generator(seed: int, split: str) -> np.random.Generator:
    """The split's own stream of the seed: a split's scenes do not change with another's count."""
    return np.random.default_rng([seed, SPLITS.index(split)])


def compose_scenes(
    read_items: ReadItems,
    labels: np.ndarray,
    item_shape: tuple[int, ...],
    count: int,
    params: ComposeScenesParams,
    rng: np.random.Generator,
) -> Scenes:
    """count scenes of a split's items. labels: every item's class; item_shape: (h, w, c);
    read_items(indices): the items at sorted indices as float32 (k, h, w, c) in [0, 1]."""
    layout = plan_layout(count, len(labels), item_shape, params, rng)
    size, channels = params.canvas_size, item_shape[-1]
    scenes = Scenes(
        np.empty((count, size, size, channels), np.uint8),
        np.empty((count, size, size), np.uint8),
        np.empty(layout.boxes.shape, np.float32),
        np.empty(layout.sources.shape, np.int32),
    )
    for start in range(0, count, CHUNK_SCENES):
        chunk = slice(start, start + CHUNK_SCENES)
        part = render(layout[chunk], read_items, labels, params, rng)
        for name in ("images", "masks", "boxes", "labels"):
            getattr(scenes, name)[chunk] = getattr(part, name)
    return scenes


def render(
    layout: Layout, read_items: ReadItems, labels: np.ndarray, params: ComposeScenesParams, rng: np.random.Generator
) -> Scenes:
    """The scenes of layout, reading its items (sorted, each once) with read_items."""
    present = layout.sources >= 0
    indices, rows = np.unique(layout.sources[present], return_inverse=True)
    items = read_items(indices)
    item_rows = np.full(layout.sources.shape, -1)
    item_rows[present] = rows
    pixels = background(len(present), params.canvas_size, items.shape[-1], params.background_contrast, rng)
    masks = np.zeros(pixels.shape[:3], np.uint8)
    boxes = np.zeros(layout.boxes.shape, np.float32)
    scene_labels = np.where(present, labels[np.maximum(layout.sources, 0)], -1).astype(np.int32)
    for slot in range(present.shape[1]):  # in order: later items paint over earlier ones
        sizes = layout.boxes[:, slot, 2:] - layout.boxes[:, slot, :2]
        for width, height in np.unique(sizes[present[:, slot]], axis=0):
            scenes = np.flatnonzero(present[:, slot] & (sizes == (width, height)).all(1))
            resized = resize(items[item_rows[scenes, slot]], height, width)
            origins = layout.boxes[scenes, slot, :2]
            boxes[scenes, slot] = paste(pixels, masks, scenes, origins, resized, scene_labels[scenes, slot] + 1)
    return Scenes(np.rint(pixels * 255).clip(0, 255).astype(np.uint8), masks, boxes, scene_labels)


def paste(
    pixels: np.ndarray,
    masks: np.ndarray,
    scenes: np.ndarray,
    origins: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """Paint the foreground of items (g, h, w, c) onto scenes of pixels, and values onto their
    masks, with top-left corners origins (g, 2) x, y; the items' boxes tightened to it (g, 4)."""
    foreground = foreground_of(items)
    height, width = items.shape[1:3]
    rows = origins[:, 1:] + np.arange(height)
    columns = origins[:, :1] + np.arange(width)
    item, row, column = np.nonzero(foreground)  # written only where the items' foreground is
    where = (scenes[item], rows[item, row], columns[item, column])
    pixels[where] = items[item, row, column]
    masks[where] = values[item]
    return tight_boxes(foreground) + np.tile(origins, 2)


def foreground_of(items: np.ndarray) -> np.ndarray:
    """(g, h, w) the pixels of items (g, h, w, c) brighter than FOREGROUND_SHARE of each one's
    brightest; all of an item that has none."""
    brightness = items.max(-1)
    foreground = brightness > FOREGROUND_SHARE * brightness.max((1, 2), keepdims=True)
    foreground[~foreground.any((1, 2))] = True
    return foreground


def tight_boxes(foreground: np.ndarray) -> np.ndarray:
    """(g, 4) x_min, y_min, x_max, y_max (edges) of each non-empty foreground (g, h, w)."""
    rows, columns = np.any(foreground, axis=2), np.any(foreground, axis=1)
    height, width = foreground.shape[1:]
    return np.stack(
        [
            columns.argmax(1),
            rows.argmax(1),
            width - columns[:, ::-1].argmax(1),
            height - rows[:, ::-1].argmax(1),
        ],
        -1,
    )


def background(count: int, size: int, channels: int, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """(count, size, size, channels) float32 textures in [0, contrast]: the mean of smooth
    noise (a coarse random grid, upsampled, different in each channel) and stripes at a random
    angle, frequency and phase."""
    grid = rng.random((count, NOISE_CELLS, NOISE_CELLS, channels), dtype=np.float32)
    noise = resize(grid, size, size)
    angle, phase, cycles = (
        rng.uniform(low, high, (count, 1, 1)).astype(np.float32)
        for low, high in ((0, np.pi), (0, 2 * np.pi), STRIPE_CYCLES)
    )
    # sin(u + v) = sin u cos v + cos u sin v, with u along x and v along y: products of (count,
    # size) vectors instead of a sine of every pixel.
    steps = 2 * np.pi * cycles * np.arange(size, dtype=np.float32) / size
    across, down = steps * np.cos(angle), steps * np.sin(angle) + phase
    stripes = np.sin(across) * np.cos(down).transpose(0, 2, 1) + np.cos(across) * np.sin(down).transpose(0, 2, 1)
    return np.float32(contrast / 2) * (noise + np.float32(0.5) + np.float32(0.5) * stripes[..., None])


def resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """images (g, h, w, c) resized to (g, height, width, c) with a bilinear filter."""
    rows = resize_weights(images.shape[1], int(height))
    columns = resize_weights(images.shape[2], int(width))
    channels_first = np.moveaxis(images, -1, 1)
    return np.moveaxis(rows @ channels_first @ columns.T, 1, -1)


@functools.lru_cache(maxsize=256)
def resize_weights(source: int, target: int) -> np.ndarray:
    """(target, source) bilinear (triangle) filter weights, widened when shrinking so that
    every source pixel counts (PIL's antialiased bilinear)."""
    scale = source / target
    support = max(scale, 1.0)
    centers = (np.arange(target) + 0.5) * scale
    distance = np.abs(np.arange(source) + 0.5 - centers[:, None]) / support
    weights = np.clip(1 - distance, 0, None)
    weights = (weights / weights.sum(1, keepdims=True)).astype(np.float32)
    weights.flags.writeable = False
    return weights
