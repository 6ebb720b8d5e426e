"""preprocess: validated raw shards to model-ready ones in `data/processed/`.

A stratified validation split is drawn from train with the seed, and train is written in a
seeded random order. Pixels stay uint8 shards (imagepipe.data.shards); `preprocessing.json`
defines the normalisation to [0, 1] and the one-hot labels, which the input pipelines apply as
they read. One shard is in memory at a time, whatever the dataset's size; `classes.json` sits
beside the shards.
"""

import argparse
import logging
from pathlib import Path

import numpy as np

from imagepipe.core.cli import run_stage
from imagepipe.core.errors import StageError
from imagepipe.core.files import atomic_directory, read_json, write_json
from imagepipe.core.params import load_params
from imagepipe.data.preprocessing import copy_images, split_indices, write_encoding
from imagepipe.data.shards import ShardWriter, write_manifest
from imagepipe.data.storage import open_raw

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
    raw, class_names = open_raw(args.raw)
    indices = split_indices(raw["train"].labels(), params.preprocess.validation_split, params.seed)
    sources = {"train": (raw["train"], indices["train"]), "val": (raw["train"], indices["val"])}
    sources["test"] = (raw["test"], np.arange(raw["test"].count))
    with atomic_directory(args.out) as scratch:
        entries = {
            name: copy_images(source, chosen, ShardWriter(scratch, name, source.shape))
            for name, (source, chosen) in sources.items()
        }
        write_manifest(scratch, entries)
        write_encoding(scratch, len(class_names))
        write_json(scratch / "classes.json", class_names)
    logger.info("wrote %s: %s", args.out, {name: entry["count"] for name, entry in entries.items()})


if __name__ == "__main__":
    run_stage(main)
