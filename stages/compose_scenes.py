"""compose_scenes: scenes of several items of `data/processed/` on a textured canvas, with a class
mask and a box per item, for the segmentation and detection families (`data/scenes/`).

Each split's scenes are made of the same split's items (train of train, val of val, test of
test), so no item crosses splits; each split has its own seeded stream
(imagepipe.data.composition). Items are read a chunk at a time and one split's scenes are in
memory at a time. The scenes are validated with Great Expectations
(imagepipe.validation.scenes); `data/scenes/` appears only when every expectation holds, and
otherwise the stage exits non-zero with one line per failure and leaves nothing behind.
"""

import argparse
import logging
from pathlib import Path

import numpy as np

from imagepipe.core.cli import run_stage
from imagepipe.core.errors import StageError
from imagepipe.core.files import atomic_directory, read_json, write_json
from imagepipe.core.params import load_params
from imagepipe.core.sections import ComposeScenesParams
from imagepipe.data.composition import compose_scenes, generator, scene_counts
from imagepipe.data.preprocessing import normalize, read_encoding
from imagepipe.data.scenes import SPLITS, Scenes, save_scenes
from imagepipe.data.shards import open_split
from imagepipe.validation.scenes import split_tables, summarize_scenes, validate_scenes

logger = logging.getLogger(__name__)


class ScenesInvalid(StageError):
    """The composed scenes broke at least one expectation."""


def compose_split(
    data: Path, split: str, count: int, params: ComposeScenesParams, seed: int
) -> tuple[Scenes, np.ndarray]:
    """count scenes of data's split, and the split's labels. Items are read as the model inputs
    that preprocess defined (preprocessing.json), a few at a time."""
    source, encoding = open_split(data, split), read_encoding(data)

    def read_items(indices: np.ndarray) -> np.ndarray:
        return normalize(source.read(indices), encoding["scale"], encoding["offset"])

    labels = source.labels()
    return compose_scenes(read_items, labels, source.shape, count, params, generator(seed, split)), labels


def require_validated(summary: Path) -> None:
    if not summary.is_file():
        raise StageError(f"{summary} is missing: run `dvc repro validate` first")
    if not read_json(summary).get("success"):
        raise StageError(f"{summary} records a failed validation; fix the data and run `dvc repro` again")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output, e.g. data/processed")
    parser.add_argument("--validation", type=Path, required=True, help="validate's summary.json")
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/scenes")
    args = parser.parse_args()
    params = load_params(args.params)
    require_validated(args.validation)
    class_names = read_json(args.data / "classes.json")
    counts, tables = scene_counts(params.compose_scenes), {}
    with atomic_directory(args.out) as scratch:
        for split in SPLITS:
            scenes, labels = compose_split(args.data, split, counts[split], params.compose_scenes, params.seed)
            save_scenes(scratch, split, scenes)
            tables[split] = split_tables(scenes, labels, class_names)
        report = validate_scenes(tables, class_names, params.compose_scenes)
        if not report.success:  # raised inside the block: the scratch directory goes with it
            details = "\n  ".join(report.failures)
            raise ScenesInvalid(f"composed scenes failed {len(report.failures)} expectation(s):\n  {details}")
        write_json(scratch / "classes.json", class_names)
        write_json(scratch / "summary.json", summarize_scenes(report, tables))
    logger.info("wrote %s: %s scenes", args.out, counts)


if __name__ == "__main__":
    run_stage(main)
