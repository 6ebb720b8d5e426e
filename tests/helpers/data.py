"""Small real datasets made on disk for the tests: labels, images, a preprocess output."""

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def balanced_labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


def write_image(path: Path, mode: str, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)


def write_processed(directory: Path, num_classes: int = 3, per_class: int = 20, size: int = 28, seed: int = 0) -> Path:
    """A tiny preprocess output (shards, preprocessing.json, classes.json) of learnable blobs."""
    import json

    from imagepipe.data.preprocessing import split_indices, write_encoding
    from imagepipe.data.shards import write_manifest, write_split

    rng = np.random.default_rng(seed)

    def make(count):
        labels = balanced_labels(num_classes, count, seed)
        images = rng.integers(0, 60, (len(labels), size, size, 1))
        for index, label in enumerate(labels):
            band = slice(label * size // num_classes, (label + 1) * size // num_classes)
            images[index, band, :, 0] += 180
        return images.astype(np.uint8), labels

    (train_images, train_labels), test = make(per_class), make(per_class // 2)
    chosen = split_indices(train_labels, 0.25, seed)
    arrays = {name: (train_images[index], train_labels[index]) for name, index in chosen.items()} | {"test": test}
    directory.mkdir(parents=True, exist_ok=True)
    write_manifest(
        directory, {name: write_split(directory, name, iter([pair]), (size, size, 1)) for name, pair in arrays.items()}
    )
    write_encoding(directory, num_classes)
    (directory / "classes.json").write_text(json.dumps([f"class {i}" for i in range(num_classes)]))
    return directory
