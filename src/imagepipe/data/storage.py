"""The raw dataset on disk: train and test splits as uint8 shards, class names and a manifest."""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from imagepipe.core.files import atomic_directory, read_json, write_json
from imagepipe.data.shards import ShardedSplit, open_split, write_manifest, write_split


class BatchSource(Protocol):
    """A split whose images come in batches at a given size (imagepipe.data.sources.raw)."""

    def batches(self, size: tuple[int, int, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


logger = logging.getLogger(__name__)


def save_raw(
    directory: Path,
    splits: dict[str, BatchSource],
    size: tuple[int, int, int],
    class_names: list[str],
    manifest: dict,
    **shard_options,
) -> dict:
    """Each split's images decoded and written shard by shard; the manifest with what was
    written. Nothing replaces directory unless every split was written whole."""
    with atomic_directory(directory) as scratch:
        entries = {
            name: write_split(scratch, name, split.batches(size), size, **shard_options)
            for name, split in splits.items()
        }
        write_manifest(scratch, entries)
        unreadable = [
            {"path": path, "reason": reason}
            for split in splits.values()
            for path, reason in getattr(split, "unreadable", [])
        ]
        manifest = manifest | {f"num_{name}": entry["count"] for name, entry in entries.items()}
        if unreadable:
            manifest["unreadable_files"] = unreadable
        write_json(scratch / "classes.json", list(class_names))
        write_json(scratch / "manifest.json", manifest)
    logger.info("wrote %s: %s", directory, {name: entry["count"] for name, entry in entries.items()})
    return manifest


def open_raw(directory: Path) -> tuple[dict[str, ShardedSplit], list[str]]:
    """The raw train and test splits (read a shard at a time) and the class names."""
    splits = {name: open_split(directory, name) for name in ("train", "test")}
    return splits, read_json(Path(directory) / "classes.json")
