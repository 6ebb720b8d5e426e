"""preprocess: validated raw arrays to model-ready ones in `data/processed/`.

Pixels are scaled to [0, 1] (float16 by default: half the disk and memory of float32, and
exact to 3 significant digits for k/255), labels become one-hot uint8, and a stratified
validation split is drawn from train with the seed. Each array is a plain `.npy` so training
can memory-map it; `classes.json` sits beside them.
"""

import argparse
import logging
from pathlib import Path

import numpy as np

from stages.common.arrays import Split, atomic_directory, load_raw, read_json, write_json
from stages.common.cli import StageError, run_stage
from stages.common.params import load_params
from stages.common.splits import stratified_split

logger = logging.getLogger(__name__)


def normalize(images: np.ndarray, dtype: str) -> np.ndarray:
    """uint8 pixels scaled to [0, 1], through a 256-entry table: no float32 copy of the batch."""
    table = (np.arange(256, dtype=np.float64) / 255).astype(dtype)
    return table[images]


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.uint8)[labels]


def prepare(train: Split, test: Split, num_classes: int, validation_split: float, dtype: str, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"|"val"|"test": (images in [0, 1], one-hot labels)}."""
    kept, held = stratified_split(train.labels, validation_split, seed, "train into train and validation (preprocess.validation_split)")
    splits = {"train": train.subset(kept), "val": train.subset(held), "test": test}
    return {name: (normalize(split.images, dtype), one_hot(split.labels, num_classes)) for name, split in splits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="download's output, e.g. data/raw")
    parser.add_argument("--validation", type=Path, required=True, help="validate's summary.json")
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/processed")
    args = parser.parse_args()
    params = load_params(args.params)
    if not read_json(args.validation).get("success"):
        raise StageError(f"{args.validation} records a failed validation; fix the data and run `dvc repro` again")
    train, test, class_names = load_raw(args.raw)
    arrays = prepare(train, test, len(class_names), params.preprocess.validation_split, params.preprocess.dtype, params.seed)
    with atomic_directory(args.out) as scratch:
        for name, (images, labels) in arrays.items():
            np.save(scratch / f"{name}_images.npy", images)
            np.save(scratch / f"{name}_labels.npy", labels)
        write_json(scratch / "classes.json", class_names)
    logger.info("wrote %s: %s", args.out, {name: len(labels) for name, (_, labels) in arrays.items()})


if __name__ == "__main__":
    run_stage(main)
