"""The download stage's core: any configured dataset as train and test splits of uint8 images."""

from pathlib import Path

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.redact import redact
from imagepipe.core.sections import DataParams, ImageParams
from imagepipe.data.sources.datasets import IDX_DATASETS, IdxSpec
from imagepipe.data.sources.fetch import fetch_all
from imagepipe.data.sources.idx import parse_idx
from imagepipe.data.sources.image_folder import (
    class_names,
    read_folder,
    resolve_source,
    split_folders,
)
from imagepipe.data.sources.images import fit_array
from imagepipe.data.splits import stratified_split, stratified_subset
from imagepipe.data.storage import Split

Loaded = tuple[Split, Split, list[str], dict]


def build_raw(
    data: DataParams,
    image: ImageParams,
    seed: int,
    cache_dir: Path,
    specs: dict[str, IdxSpec] = IDX_DATASETS,
) -> Loaded:
    """The train and test splits, class names and provenance of the dataset that data names."""
    if data.dataset in specs:
        train, test, names, manifest = _load_idx(specs[data.dataset], data.source, cache_dir / data.dataset)
    elif data.dataset == "digits":
        train, test, names, manifest = _load_digits(data.test_fraction, seed)
    else:
        train, test, names, manifest = _load_image_folder(data, image, seed, cache_dir / "image_folder")
    size = (image.height, image.width, image.channels)
    train, test = (Split(fit_array(split.images, *size), split.labels) for split in (train, test))
    train = train.subset(
        stratified_subset(
            train.labels,
            data.max_train_images,
            seed,
            f"train images to data.max_train_images={data.max_train_images}",
        )
    )
    test = test.subset(
        stratified_subset(
            test.labels,
            data.max_test_images,
            seed,
            f"test images to data.max_test_images={data.max_test_images}",
        )
    )
    manifest |= {
        "dataset": data.dataset,
        "num_train": len(train.labels),
        "num_test": len(test.labels),
    }
    return train, test, names, manifest


def _load_idx(spec: IdxSpec, source: str | None, cache_dir: Path) -> Loaded:
    sources = [source] if source else list(spec.sources)
    used, payloads = fetch_all(spec.resources, sources, cache_dir)
    arrays = {res.filename: parse_idx(payloads[res.filename], res.filename) for res in spec.resources}
    train = Split(
        arrays[spec.train_images.filename],
        arrays[spec.train_labels.filename].astype(np.int64),
    )
    test = Split(
        arrays[spec.test_images.filename],
        arrays[spec.test_labels.filename].astype(np.int64),
    )
    for name, split in (("train", train), ("test", test)):
        if len(split.images) != len(split.labels):
            raise StageError(
                f"{name} split from {redact(used)}: {len(split.images)} images but {len(split.labels)} labels"
            )
    return train, test, list(spec.class_names), {"source": redact(used)}


def _load_digits(test_fraction: float, seed: int) -> Loaded:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # The 8x8 images hold 0..16; scale to the 0..255 of every other dataset.
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    train_index, test_index = stratified_split(labels, test_fraction, seed, "digits into train and test")
    train, test = (
        Split(images[train_index], labels[train_index]),
        Split(images[test_index], labels[test_index]),
    )
    return (
        train,
        test,
        [str(digit) for digit in range(10)],
        {"source": "sklearn.datasets.load_digits"},
    )


def _load_image_folder(data: DataParams, image: ImageParams, seed: int, cache_dir: Path) -> Loaded:
    root, provenance = resolve_source(data.source, cache_dir)
    size = (image.height, image.width, image.channels)
    folders = split_folders(root)
    names = class_names(list(folders.values()) if folders else [root])
    if folders:
        train_read, test_read = (
            read_folder(folders[split], names, size, data.skip_unreadable) for split in ("train", "test")
        )
        train, test = (
            Split(train_read.images, train_read.labels),
            Split(test_read.images, test_read.labels),
        )
        unreadable = train_read.unreadable + test_read.unreadable
    else:
        read = read_folder(root, names, size, data.skip_unreadable)
        train_index, test_index = stratified_split(read.labels, data.test_fraction, seed, f"{root} into train and test")
        train, test = (
            Split(read.images[train_index], read.labels[train_index]),
            Split(read.images[test_index], read.labels[test_index]),
        )
        unreadable = read.unreadable
    skipped = [{"path": path, "reason": reason} for path, reason in unreadable]
    return train, test, names, provenance | {"skipped_files": skipped}
