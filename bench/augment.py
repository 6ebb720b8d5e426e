"""The project's augmentation pipeline (train_cnn's tf.data batches with the fused warp), with
the course's ImageDataGenerator settings, over the same 60,000 images the course recipe uses."""

import gzip
import time
from pathlib import Path

import numpy as np

from imagepipe.core.sections import AugmentationParams
from imagepipe.data.preprocessing import normalize, one_hot
from imagepipe.data.sources.idx import parse_idx
from imagepipe.training.inputs import batches

# seed_augment.py's ImageDataGenerator: rotation_range=10, zoom_range=0.1, shifts 0.1, batch 256.
COURSE = AugmentationParams(
    enabled=True, rotation_degrees=10.0, zoom=0.1, width_shift=0.1, height_shift=0.1, horizontal_flip=False
)
BATCH_SIZE = 256


def read(data_dir: Path, name: str) -> np.ndarray:
    with gzip.open(data_dir / name) as file:
        return parse_idx(file.read(), name)


def augmentation_throughput(data_dir: Path, seed: int, passes: int = 2) -> dict:
    """Images/s of one pass (best of `passes`, after a warm-up batch), images as preprocess writes them."""
    images = normalize(read(data_dir, "train-images-idx3-ubyte.gz")[..., np.newaxis], "float16")
    labels = one_hot(read(data_dir, "train-labels-idx1-ubyte.gz"), 10)
    pipeline = batches(images, labels, BATCH_SIZE, seed, shuffle=True, augment=COURSE)
    next(iter(pipeline))
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for _ in pipeline:
            pass
        best = min(best, time.perf_counter() - start)
    return {"images": len(images), "batch_size": BATCH_SIZE, "img_per_s": len(images) / best}
