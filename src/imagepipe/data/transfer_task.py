"""The transfer-learning task: a second, small labelled dataset, validated and normalised."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.files import atomic_directory, write_json
from imagepipe.core.sections import DataParams, ImageParams, PrepareTransferParams, ValidateParams
from imagepipe.data.preprocessing import normalize, one_hot
from imagepipe.data.sources.raw import build_raw
from imagepipe.data.storage import Split
from imagepipe.validation.runner import validate_dataset
from imagepipe.validation.summary import ValidationFailed, summarize

logger = logging.getLogger(__name__)


class TooFewImages(StageError):
    """A class has fewer train images than the train and validation splits need."""


@dataclass
class TransferTask:
    splits: dict[str, Split]
    class_names: list[str]
    summary: dict


def few_labels(labels: np.ndarray, labels_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): labels_per_class of each class for each, disjoint, seeded."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) < 2 * labels_per_class:
            raise TooFewImages(
                f"class {label} has {len(members)} train images; prepare_transfer.labels_per_class={labels_per_class} "
                f"needs {2 * labels_per_class} (train and validation); lower it to at most {len(members) // 2}"
            )
        train.append(members[:labels_per_class])
        validation.append(members[labels_per_class : 2 * labels_per_class])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


def prepare_task(
    section: PrepareTransferParams,
    image: ImageParams,
    checks: ValidateParams,
    seed: int,
    cache_dir: Path,
) -> TransferTask:
    """Read, cut to few labels and validate the target task; fails with the broken expectations."""
    data = DataParams(
        dataset=section.dataset,
        source=section.source,
        max_train_images=None,
        max_test_images=None,
        test_fraction=section.test_fraction,
        skip_unreadable=False,
    )
    train, test, class_names, _ = build_raw(data, image, seed, cache_dir)
    train_index, validation_index = few_labels(train.labels, section.labels_per_class, seed)
    splits = {
        "train": train.subset(train_index),
        "val": train.subset(validation_index),
        "test": test,
    }
    checks = checks.model_copy(
        update={"min_images_per_class": min(checks.min_images_per_class, section.labels_per_class)}
    )
    report = validate_dataset(splits, class_names, checks, image)
    if not report.success:
        details = "\n  ".join(report.failures)
        raise ValidationFailed(
            f"the transfer task ({section.dataset}) failed validation "
            f"({len(report.failures)} expectation(s)):\n  {details}"
        )
    return TransferTask(splits, class_names, summarize(report, splits, class_names))


def write_task(directory: Path, task: TransferTask, dtype: str) -> None:
    """preprocess's layout: {split}_images.npy in [0, 1], {split}_labels.npy one-hot, classes.json."""
    with atomic_directory(directory) as scratch:
        for name, split in task.splits.items():
            np.save(scratch / f"{name}_images.npy", normalize(split.images, dtype))
            np.save(
                scratch / f"{name}_labels.npy",
                one_hot(split.labels, len(task.class_names)),
            )
        write_json(scratch / "classes.json", task.class_names)
        write_json(scratch / "summary.json", task.summary)
    logger.info(
        "wrote %s: %s",
        directory,
        {name: len(split.labels) for name, split in task.splits.items()},
    )
