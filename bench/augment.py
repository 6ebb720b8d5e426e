"""The project's augmentation pipeline (train_cnn's tf.data batches with the fused warp), with
the course's ImageDataGenerator settings, over the same 60,000 images the course recipe uses."""

import gzip
import tempfile
import time
from pathlib import Path

import numpy as np

from imagepipe.core.sections import AugmentationParams
from imagepipe.data.preprocessing import write_encoding
from imagepipe.data.shards import write_manifest, write_split
from imagepipe.data.sources.idx import parse_idx
from imagepipe.training.inputs import batches, load_split

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
    images = read(data_dir, "train-images-idx3-ubyte.gz")[..., np.newaxis]
    labels = read(data_dir, "train-labels-idx1-ubyte.gz").astype(np.int64)
    with tempfile.TemporaryDirectory(prefix="bench-augment-") as directory:
        # As preprocess writes them: uint8 shards and the encoding that normalises them.
        write_manifest(
            directory, {"train": write_split(directory, "train", iter([(images, labels)]), images.shape[1:])}
        )
        write_encoding(directory, 10)
        return _throughput(
            batches(load_split(directory, "train"), BATCH_SIZE, seed, shuffle=True, augment=COURSE), len(images), passes
        )


def _throughput(pipeline, images: int, passes: int) -> dict:
    next(iter(pipeline))
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for _ in pipeline:
            pass
        best = min(best, time.perf_counter() - start)
    return {"images": images, "batch_size": BATCH_SIZE, "img_per_s": images / best}
