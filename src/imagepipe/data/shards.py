"""Sharded splits: a dataset on disk as fixed-size `.npy` shards, written and read one at a time.

A directory holds `shards.json` and, per split, `<split>-<n>.npy` (images, N×H×W×C) and
`<split>-<n>-labels.npy` (int64 class indices). Each shard holds at most SHARD_BYTES of images,
so no stage ever needs more than one shard in memory, whatever the dataset's size. The manifest
records every shard's count, hash and `.npy` header length (so readers outside NumPy, such as
tf.data's fixed-length records, can find the pixels). Labels are small (8 bytes an image) and
are read whole.
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.files import read_json, write_json

MANIFEST = "shards.json"
SHARD_BYTES = 64 * 2**20
VERSION = 1


class ShardError(StageError):
    """A sharded directory is missing, from another version, or does not match its manifest."""


class ShardWriter:
    """Appends images of one split, writing each shard to disk as soon as it is full."""

    def __init__(
        self,
        directory: Path,
        split: str,
        shape: tuple[int, ...],
        dtype: str = "uint8",
        shard_bytes: int = SHARD_BYTES,
    ):
        self.directory, self.split, self.shape, self.dtype = Path(directory), split, tuple(shape), np.dtype(dtype)
        self.capacity = max(1, shard_bytes // (int(np.prod(shape)) * self.dtype.itemsize))
        self.images = np.empty((self.capacity, *self.shape), self.dtype)
        self.labels = np.empty(self.capacity, np.int64)
        self.filled = 0
        self.shards: list[dict] = []

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        """A batch of images (N×H×W×C) and their labels (N)."""
        if images.shape[1:] != self.shape:
            raise ShardError(f"{self.split}: images of shape {images.shape[1:]} in a split of {self.shape}")
        start = 0
        while start < len(images):
            take = min(self.capacity - self.filled, len(images) - start)
            self.images[self.filled : self.filled + take] = images[start : start + take]
            self.labels[self.filled : self.filled + take] = labels[start : start + take]
            self.filled, start = self.filled + take, start + take
            if self.filled == self.capacity:
                self._flush()

    def close(self) -> dict:
        """Writes the last shard; the split's manifest entry."""
        if self.filled:
            self._flush()
        return {
            "count": sum(shard["count"] for shard in self.shards),
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "shards": self.shards,
        }

    def _flush(self) -> None:
        name = f"{self.split}-{len(self.shards):05d}"
        images, labels = self.directory / f"{name}.npy", self.directory / f"{name}-labels.npy"
        np.save(images, self.images[: self.filled])
        np.save(labels, self.labels[: self.filled])
        self.shards.append(
            {
                "images": images.name,
                "labels": labels.name,
                "count": self.filled,
                "sha256": file_sha256(images),
                "images_offset": npy_offset(images),
                "labels_offset": npy_offset(labels),
            }
        )
        self.filled = 0


def write_manifest(directory: Path, splits: dict[str, dict]) -> None:
    write_json(Path(directory) / MANIFEST, {"version": VERSION, "splits": splits})


def write_split(
    directory: Path, split: str, batches: Iterator[tuple[np.ndarray, np.ndarray]], shape: tuple[int, ...], **options
) -> dict:
    """Every (images, labels) batch of an iterator as one split's shards; its manifest entry."""
    writer = ShardWriter(directory, split, shape, **options)
    for images, labels in batches:
        writer.add(images, labels)
    return writer.close()


@dataclass(frozen=True)
class ShardedSplit:
    """One split of a sharded directory, for reading a shard, or a few images, at a time."""

    directory: Path
    name: str
    count: int
    shape: tuple[int, ...]
    dtype: np.dtype
    shards: tuple[dict, ...]

    @property
    def image_bytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.count * self.image_bytes

    def labels(self) -> np.ndarray:
        if not self.shards:
            return np.zeros(0, np.int64)
        return np.concatenate([np.load(self.directory / shard["labels"]) for shard in self.shards])

    def iter_shards(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(images, labels) of each shard in turn: one shard in memory at a time."""
        for shard in self.shards:
            yield np.load(self.directory / shard["images"]), np.load(self.directory / shard["labels"])

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The images at indices (in that order), read from the files without loading whole shards."""
        indices = np.asarray(indices, np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.count):
            raise IndexError(f"{self.name}: index out of range 0..{self.count - 1}")
        out = np.empty((len(indices), *self.shape), self.dtype)
        starts = np.cumsum([0] + [shard["count"] for shard in self.shards])
        owner = np.searchsorted(starts, indices, side="right") - 1
        for number in np.unique(owner):
            shard, where = self.shards[number], np.flatnonzero(owner == number)
            with open(self.directory / shard["images"], "rb") as file:
                for position in where:
                    offset = shard["images_offset"] + (indices[position] - starts[number]) * self.image_bytes
                    out[position] = np.frombuffer(
                        os.pread(file.fileno(), self.image_bytes, offset), self.dtype
                    ).reshape(self.shape)
        return out


def open_split(directory: Path, split: str) -> ShardedSplit:
    manifest = read_manifest(directory)
    if split not in manifest["splits"]:
        raise ShardError(f"{directory} has no split {split!r}; it has {sorted(manifest['splits'])}")
    entry = manifest["splits"][split]
    return ShardedSplit(
        Path(directory), split, entry["count"], tuple(entry["shape"]), np.dtype(entry["dtype"]), tuple(entry["shards"])
    )


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ShardError(
            f"{path} is missing: {directory} is not a sharded dataset (written by this version's download, "
            "preprocess or prepare_transfer); run `dvc repro` to rebuild it"
        )
    manifest = read_json(path)
    if manifest.get("version") != VERSION:
        raise ShardError(f"{path}: shard format version {manifest.get('version')}, this code reads {VERSION}")
    return manifest


def verify(directory: Path) -> None:
    """Every shard present with the count and hash its manifest records."""
    for split, entry in read_manifest(directory)["splits"].items():
        for shard in entry["shards"]:
            path = Path(directory) / shard["images"]
            if not path.is_file() or file_sha256(path) != shard["sha256"]:
                raise ShardError(f"{path}: missing or not the shard {MANIFEST} records for split {split}")


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (a shard or an archive may not fit in memory)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def npy_offset(path: Path) -> int:
    """Where a `.npy` file's data starts, after its header."""
    with open(path, "rb") as file:
        version = np.lib.format.read_magic(file)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        reader(file)
        return file.tell()
