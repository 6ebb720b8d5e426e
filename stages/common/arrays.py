"""On-disk layout of the stage outputs, written so that a failed stage leaves nothing behind.

`data/raw/` holds `train.npz` and `test.npz` (uint8 images N×H×W×C and int64 labels),
`classes.json` (class names, index = label) and `manifest.json` (where the data came from).
"""

import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class Split:
    images: np.ndarray
    labels: np.ndarray

    def subset(self, indices: np.ndarray) -> "Split":
        return Split(self.images[indices], self.labels[indices])


@contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """A scratch directory that replaces path only if the block completes."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.partial-*"):  # left by a killed run
        if not _running(stale.name.rsplit("-", 1)[1]):
            shutil.rmtree(stale, ignore_errors=True)
    scratch = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    scratch.rename(path)


def replace_whole(path: Path, write: Callable[[Path], object]) -> None:
    """write(scratch) beside path, then rename the scratch over path: a kill, an exception or a
    full disk mid-write leaves path as it was (and, but for a kill, no scratch behind)."""
    path = Path(path)
    scratch = path.with_name(f"partial-{os.getpid()}-{path.name}")
    try:
        write(scratch)
        scratch.replace(path)
    finally:
        scratch.unlink(missing_ok=True)


def _running(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_json(path: Path, value: Any) -> None:
    Path(path).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_raw(directory: Path, train: Split, test: Split, class_names: list[str], manifest: dict) -> None:
    with atomic_directory(directory) as scratch:
        for name, split in (("train", train), ("test", test)):
            np.savez_compressed(scratch / f"{name}.npz", images=split.images, labels=split.labels)
        write_json(scratch / "classes.json", list(class_names))
        write_json(scratch / "manifest.json", manifest)
    logger.info("wrote %s: %d train, %d test images", directory, len(train.labels), len(test.labels))


def load_raw(directory: Path) -> tuple[Split, Split, list[str]]:
    directory = Path(directory)
    splits = []
    for name in ("train", "test"):
        with np.load(directory / f"{name}.npz") as arrays:
            splits.append(Split(arrays["images"], arrays["labels"]))
    return splits[0], splits[1], read_json(directory / "classes.json")
