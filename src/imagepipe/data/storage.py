"""The raw dataset on disk: train and test splits as uint8 arrays, class names and a manifest."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagepipe.core.files import atomic_directory, read_json, write_json

logger = logging.getLogger(__name__)


@dataclass
class Split:
    images: np.ndarray
    labels: np.ndarray

    def subset(self, indices: np.ndarray) -> "Split":
        return Split(self.images[indices], self.labels[indices])


def save_raw(directory: Path, train: Split, test: Split, class_names: list[str], manifest: dict) -> None:
    with atomic_directory(directory) as scratch:
        for name, split in (("train", train), ("test", test)):
            np.savez_compressed(scratch / f"{name}.npz", images=split.images, labels=split.labels)
        write_json(scratch / "classes.json", list(class_names))
        write_json(scratch / "manifest.json", manifest)
    logger.info(
        "wrote %s: %d train, %d test images",
        directory,
        len(train.labels),
        len(test.labels),
    )


def load_raw(directory: Path) -> tuple[Split, Split, list[str]]:
    directory = Path(directory)
    splits = []
    for name in ("train", "test"):
        with np.load(directory / f"{name}.npz") as arrays:
            splits.append(Split(arrays["images"], arrays["labels"]))
    return splits[0], splits[1], read_json(directory / "classes.json")
