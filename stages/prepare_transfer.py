"""prepare_transfer: the few-label target task of the transfer stage, in `data/transfer/`.

The `prepare_transfer` dataset is read like download reads `data` (at the pipeline's `image`
size, so it fits the pipeline's CNN), then `labels_per_class` train images per class are kept
for training and as many others for validation (seeded, chosen before anything is decoded), with
the whole test split. The splits are written as shards and must pass the `validate` expectations
(streamed, a shard at a time) before the output replaces the old one, with the minimum images per
class lowered to `labels_per_class` when that is smaller (a few-label task has few by design).
The layout is preprocess's (shards, `preprocessing.json`, `classes.json`) plus validate's
`summary.json`, so evaluate and visualize work on it unchanged.
"""

import argparse
import logging
from pathlib import Path

import pooch

from imagepipe.core.cli import run_stage
from imagepipe.core.files import atomic_directory
from imagepipe.core.params import load_params
from imagepipe.core.sections import ImageParams, PrepareTransferParams, ValidateParams
from imagepipe.data.shards import open_split
from imagepipe.data.transfer_task import few_label_checks, few_label_splits, finish_task, write_splits
from imagepipe.validation.expectations import split_table
from imagepipe.validation.runner import validate_dataset
from imagepipe.validation.summary import ValidationFailed, summarize

logger = logging.getLogger(__name__)


def validate_task(
    directory: Path, dataset: str, class_names: list[str], checks: ValidateParams, image: ImageParams
) -> dict:
    """validate's expectations on the written splits; fails with the broken ones. The summary."""
    tables = {name: split_table(open_split(directory, name).iter_shards()) for name in ("train", "val", "test")}
    report = validate_dataset(tables, class_names, checks, image)
    if not report.success:
        details = "\n  ".join(report.failures)
        raise ValidationFailed(
            f"the transfer task ({dataset}) failed validation ({len(report.failures)} expectation(s)):\n  {details}"
        )
    return summarize(report, {name: table["label"].to_numpy() for name, table in tables.items()}, class_names)


def prepare_task(
    section: PrepareTransferParams, image: ImageParams, checks: ValidateParams, seed: int, cache_dir: Path, out: Path
) -> dict:
    """Read, cut to few labels, write and validate the target task into out; its summary.
    Written into a scratch directory that replaces out only once validation passed."""
    splits, class_names = few_label_splits(section, seed, cache_dir)
    with atomic_directory(out) as scratch:
        write_splits(scratch, splits, (image.height, image.width, image.channels))
        summary = validate_task(
            scratch, section.dataset, class_names, few_label_checks(checks, section.labels_per_class), image
        )
        finish_task(scratch, class_names, summary)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/transfer")
    parser.add_argument("--cache-dir", type=Path, default=Path(pooch.os_cache("imagepipe")), help="download cache")
    args = parser.parse_args()
    params = load_params(args.params)
    prepare_task(params.prepare_transfer, params.image, params.validation, params.seed, args.cache_dir, args.out)


if __name__ == "__main__":
    run_stage(main)
