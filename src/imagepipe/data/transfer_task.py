"""The transfer-learning task: a second, small labelled dataset, cut to a few labels per class and
written in preprocess's layout (the stage validates it in between)."""

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


def few_label_splits(
    section: PrepareTransferParams, image: ImageParams, seed: int, cache_dir: Path
) -> tuple[dict[str, Split], list[str]]:
    """The target task read like download reads `data`, cut to labels_per_class train and as
    many validation images per class, with the whole test split."""
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
    return {"train": train.subset(train_index), "val": train.subset(validation_index), "test": test}, class_names


def few_label_checks(checks: ValidateParams, labels_per_class: int) -> ValidateParams:
    """validate's checks with the minimum images per class lowered to labels_per_class: a
    few-label task has few by design."""
    return checks.model_copy(update={"min_images_per_class": min(checks.min_images_per_class, labels_per_class)})


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
