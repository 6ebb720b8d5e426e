"""Composed scenes on disk (`data/scenes/`, written by compose_scenes): the data of the
segmentation and detection families.

- `classes.json`: the item classes (data/processed's). Masks hold 0 for the background and
  k + 1 for class k; `mask_class_names` lists them in that order.
- `<split>.npz` for train, val and test:
  - `images`: uint8 (n, size, size, channels), pixels 0..255 (model inputs are /255, `Scenes.inputs`);
  - `masks`: uint8 (n, size, size), the class of each pixel as above;
  - `boxes`: float32 (n, max_items, 4), `x_min, y_min, x_max, y_max` in pixels, as edges (an
    item covering columns 3..10 has x_min 3, x_max 11);
  - `labels`: int32 (n, max_items), each box's class index, -1 where a scene has fewer items.
- `summary.json`: the Great Expectations verdict on them (`success`), as validate's.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagepipe.core.files import read_json, replace_whole

SPLITS = ("train", "val", "test")
BACKGROUND = "background"


@dataclass(frozen=True)
class Scenes:
    images: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    @property
    def count(self) -> int:
        return len(self.images)

    def inputs(self) -> np.ndarray:
        """The images as model inputs: float32 in [0, 1]."""
        return self.images.astype(np.float32) / 255

    def items(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(boxes, labels) of the items of scene index, without the padding."""
        present = self.labels[index] >= 0
        return self.boxes[index][present], self.labels[index][present]


def scenes_path(directory: Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    return Path(directory) / f"{split}.npz"


def save_scenes(directory: Path, split: str, scenes: Scenes) -> None:
    """Write a split's scenes, replaced whole."""
    arrays: dict[str, np.ndarray] = {
        "images": scenes.images.astype(np.uint8),
        "masks": scenes.masks.astype(np.uint8),
        "boxes": scenes.boxes.astype(np.float32),
        "labels": scenes.labels.astype(np.int32),
    }
    replace_whole(scenes_path(directory, split), lambda scratch: _save_npz(scratch, arrays))


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with Path(path).open("wb") as handle:  # a file handle: np.savez would add .npz to the scratch name
        np.savez(handle, allow_pickle=False, **arrays)


def load_scenes(directory: Path, split: str) -> Scenes:
    path = scenes_path(directory, split)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro compose_scenes` first")
    with np.load(path, allow_pickle=False) as arrays:
        return Scenes(arrays["images"], arrays["masks"], arrays["boxes"], arrays["labels"])


def item_class_names(directory: Path) -> list[str]:
    return read_json(Path(directory) / "classes.json")


def mask_class_names(directory: Path) -> list[str]:
    """The classes of mask values: the background, then the item classes."""
    return [BACKGROUND, *item_class_names(directory)]
