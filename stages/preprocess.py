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

from imagepipe.core.cli import run_stage
from imagepipe.core.errors import StageError
from imagepipe.core.files import atomic_directory, read_json, write_json
from imagepipe.core.params import load_params
from imagepipe.data.preprocessing import prepare
from imagepipe.data.storage import load_raw

logger = logging.getLogger(__name__)


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
    arrays = prepare(
        train, test, len(class_names), params.preprocess.validation_split, params.preprocess.dtype, params.seed
    )
    with atomic_directory(args.out) as scratch:
        for name, (images, labels) in arrays.items():
            np.save(scratch / f"{name}_images.npy", images)
            np.save(scratch / f"{name}_labels.npy", labels)
        write_json(scratch / "classes.json", class_names)
    logger.info("wrote %s: %s", args.out, {name: len(labels) for name, (_, labels) in arrays.items()})


if __name__ == "__main__":
    run_stage(main)
