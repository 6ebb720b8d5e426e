"""The transfer-learning task: a second, small labelled dataset, cut to a few labels per class
before any image is decoded, and written in preprocess's layout (the stage validates it)."""

import logging
from pathlib import Path

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.files import write_json
from imagepipe.core.sections import DataParams, PrepareTransferParams, ValidateParams
from imagepipe.data.preprocessing import write_encoding
from imagepipe.data.shards import write_manifest, write_split
from imagepipe.data.sources.raw import SplitSource, build_raw

logger = logging.getLogger(__name__)


class TooFewImages(StageError):
    """A class has fewer train images than the train and validation splits need."""


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
    section: PrepareTransferParams, seed: int, cache_dir: Path
) -> tuple[dict[str, SplitSource], list[str]]:
    """The target task read like download reads `data`, cut to labels_per_class train and as
    many validation images per class, with the whole test split (nothing decoded yet)."""
    data = DataParams(
        dataset=section.dataset,
        source=section.source,
        max_train_images=None,
        max_test_images=None,
        test_fraction=section.test_fraction,
        skip_unreadable=False,
    )
    train, test, class_names, _ = build_raw(data, seed, cache_dir)
    train_index, validation_index = few_labels(train.labels, section.labels_per_class, seed)
    return {"train": train.subset(train_index), "val": train.subset(validation_index), "test": test}, class_names


def few_label_checks(checks: ValidateParams, labels_per_class: int) -> ValidateParams:
    """validate's checks with the minimum images per class lowered to labels_per_class: a
    few-label task has few by design."""
    return checks.model_copy(update={"min_images_per_class": min(checks.min_images_per_class, labels_per_class)})


def write_splits(directory: Path, splits: dict[str, SplitSource], size: tuple[int, int, int]) -> None:
    """Each split decoded into shards in directory, with the shards' manifest."""
    write_manifest(
        directory, {name: write_split(directory, name, split.batches(size), size) for name, split in splits.items()}
    )


def finish_task(directory: Path, class_names: list[str], summary: dict) -> None:
    """What makes directory preprocess's layout beside the shards: the encoding, the class
    names, and validate's summary of the task."""
    write_encoding(directory, len(class_names))
    write_json(directory / "classes.json", class_names)
    write_json(directory / "summary.json", summary)
    logger.info("wrote %s: %s", directory, summary["class_counts"])
