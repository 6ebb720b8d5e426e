"""prepare_transfer: the few-label target task of the transfer stage, in `data/transfer/`.

The `prepare_transfer` dataset is read like download reads `data` (at the pipeline's `image`
size, so it fits the pipeline's CNN), then `labels_per_class` train images per class are kept
for training and as many others for validation (seeded), with the whole test split. The split
passes the `validate` expectations before anything is written, with the minimum images per
class lowered to `labels_per_class` when that is smaller (a few-label task has few by design).
The layout is preprocess's (train/val/test `.npy`, `classes.json`) plus validate's
`summary.json`, so evaluate and visualize work on it unchanged.
"""

import argparse
import logging
from pathlib import Path

import pooch

from imagepipe.core.cli import run_stage
from imagepipe.core.params import load_params
from imagepipe.core.sections import ImageParams, PrepareTransferParams, ValidateParams
from imagepipe.data.transfer_task import TransferTask, few_label_checks, few_label_splits, write_task
from imagepipe.validation.runner import validate_dataset
from imagepipe.validation.summary import ValidationFailed, summarize

logger = logging.getLogger(__name__)


def prepare_task(
    section: PrepareTransferParams, image: ImageParams, checks: ValidateParams, seed: int, cache_dir: Path
) -> TransferTask:
    """Read, cut to few labels and validate the target task; fails with the broken expectations."""
    splits, class_names = few_label_splits(section, image, seed, cache_dir)
    report = validate_dataset(splits, class_names, few_label_checks(checks, section.labels_per_class), image)
    if not report.success:
        details = "\n  ".join(report.failures)
        raise ValidationFailed(
            f"the transfer task ({section.dataset}) failed validation "
            f"({len(report.failures)} expectation(s)):\n  {details}"
        )
    return TransferTask(splits, class_names, summarize(report, splits, class_names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/transfer")
    parser.add_argument("--cache-dir", type=Path, default=Path(pooch.os_cache("imagepipe")), help="download cache")
    args = parser.parse_args()
    params = load_params(args.params)
    task = prepare_task(params.prepare_transfer, params.image, params.validation, params.seed, args.cache_dir)
    write_task(args.out, task, params.preprocess.dtype)


if __name__ == "__main__":
    run_stage(main)
