"""The download stage's core: any configured dataset as train and test splits of uint8 images,
each a `SplitSource` that yields its images in batches, so that no split is ever held whole.

Fashion-MNIST, MNIST and digits are small fixed arrays (fitted to the configured size a batch at
a time); an image folder is a list of files, decoded on every core as they are written.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.redact import redact
from imagepipe.core.sections import DataParams
from imagepipe.data.sources.datasets import IDX_DATASETS, IdxSpec
from imagepipe.data.sources.decode import decode_files
from imagepipe.data.sources.fetch import fetch_all
from imagepipe.data.sources.idx import parse_idx
from imagepipe.data.sources.image_folder import (
    class_names,
    list_folder,
    refuse_unreadable,
    resolve_source,
    split_folders,
)
from imagepipe.data.sources.images import fit_array
from imagepipe.data.splits import stratified_split, stratified_subset

# Images handed to the shard writer at a time, in bytes: bounds what decoding holds in memory.
BATCH_BYTES = 16 * 2**20
logger = logging.getLogger(__name__)


@dataclass
class ArraySplit:
    """A split already in memory as arrays of any size and channels."""

    images: np.ndarray
    labels: np.ndarray

    def subset(self, indices: np.ndarray) -> "ArraySplit":
        return ArraySplit(self.images[indices], self.labels[indices])

    def batches(self, size: tuple[int, int, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        batch = _batch_images(size)
        for start in range(0, len(self.labels), batch):
            yield fit_array(self.images[start : start + batch], *size), self.labels[start : start + batch]


@dataclass
class FileSplit:
    """A split as image files, decoded (through cache_dir) only when its batches are read."""

    paths: list[Path]
    labels: np.ndarray
    cache_dir: Path | None
    skip_unreadable: bool

    def subset(self, indices: np.ndarray) -> "FileSplit":
        return FileSplit([self.paths[i] for i in indices], self.labels[indices], self.cache_dir, self.skip_unreadable)

    def batches(self, size: tuple[int, int, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Decoded images in order; fails at the end, before anything is recorded, on unreadable
        files (all of them listed) unless skip_unreadable; their labels are left out with them."""
        self.unreadable: list[tuple[str, str]] = []
        images, labels, cached, batch = [], [], 0, _batch_images(size)
        for path, label, decoded in zip(
            self.paths, self.labels, decode_files(self.paths, size, self.cache_dir), strict=True
        ):
            if decoded.image is None:
                self.unreadable.append((str(path), decoded.error))
                continue
            images.append(decoded.image)
            labels.append(label)
            cached += decoded.cached
            if len(images) == batch:
                yield np.stack(images), np.asarray(labels, np.int64)
                images, labels = [], []
        if images:
            yield np.stack(images), np.asarray(labels, np.int64)
        logger.info(
            "%d image file(s): %d decoded, %d from the decode cache", len(self.paths), len(self.paths) - cached, cached
        )
        refuse_unreadable(self.unreadable, self.skip_unreadable)


SplitSource = ArraySplit | FileSplit


def _batch_images(size: tuple[int, int, int]) -> int:
    return max(1, BATCH_BYTES // (size[0] * size[1] * size[2]))


Loaded = tuple[SplitSource, SplitSource, list[str], dict]


def build_raw(
    data: DataParams,
    seed: int,
    cache_dir: Path,
    specs: dict[str, IdxSpec] = IDX_DATASETS,
) -> Loaded:
    """The train and test splits, class names and provenance of the dataset that data names;
    the images are read (and decoded) only as the splits' batches are."""
    if data.dataset in specs:
        train, test, names, manifest = _load_idx(specs[data.dataset], data.source, cache_dir / data.dataset)
    elif data.dataset == "digits":
        train, test, names, manifest = _load_digits(data.test_fraction, seed)
    else:
        train, test, names, manifest = _load_image_folder(data, seed, cache_dir / "image_folder")
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
    return train, test, names, manifest | {"dataset": data.dataset}


def _load_idx(spec: IdxSpec, source: str | None, cache_dir: Path) -> Loaded:
    sources = [source] if source else list(spec.sources)
    used, payloads = fetch_all(spec.resources, sources, cache_dir)
    arrays = {res.filename: parse_idx(payloads[res.filename], res.filename) for res in spec.resources}
    train = ArraySplit(
        arrays[spec.train_images.filename],
        arrays[spec.train_labels.filename].astype(np.int64),
    )
    test = ArraySplit(
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
        ArraySplit(images[train_index], labels[train_index]),
        ArraySplit(images[test_index], labels[test_index]),
    )
    return (
        train,
        test,
        [str(digit) for digit in range(10)],
        {"source": "sklearn.datasets.load_digits"},
    )


def _load_image_folder(data: DataParams, seed: int, cache_dir: Path) -> Loaded:
    root, provenance = resolve_source(data.source, cache_dir)
    folders = split_folders(root)
    names = class_names(list(folders.values()) if folders else [root])
    decoded = cache_dir / "decoded"
    if folders:
        train_list, test_list = (list_folder(folders[split], names) for split in ("train", "test"))
        train, test = (
            FileSplit(listing.paths, np.asarray(listing.labels, np.int64), decoded, data.skip_unreadable)
            for listing in (train_list, test_list)
        )
        skipped = train_list.skipped + test_list.skipped
    else:
        listing = list_folder(root, names)
        whole = FileSplit(listing.paths, np.asarray(listing.labels, np.int64), decoded, data.skip_unreadable)
        train_index, test_index = stratified_split(
            whole.labels, data.test_fraction, seed, f"{root} into train and test"
        )
        train, test = whole.subset(train_index), whole.subset(test_index)
        skipped = listing.skipped
    return train, test, names, provenance | {"skipped_files": [{"path": p, "reason": r} for p, r in skipped]}
