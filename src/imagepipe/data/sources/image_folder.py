"""A directory of class subfolders of PNG/JPEG images, as Keras's `flow_from_directory` reads it.

Class names are the folder names, sorted. The root may hold the class folders directly, or a
train and a test folder (`train`/`test`, `training`/`testing`, any case) that each hold them.
Every image is converted to the configured size and channels. Files that cannot be read are
reported by path: the load fails, or skips them when asked to, but never drops them silently.
The folder may also come as a local archive of it (imagepipe.data.sources.archives).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imagepipe.core.errors import StageError
from imagepipe.core.redact import redact
from imagepipe.data.sources.archives import (
    ARCHIVE_SUFFIXES,
    is_archive,
    unpacked_folder,
)
from imagepipe.data.sources.fetch import local_path
from imagepipe.data.sources.images import fit_image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLIT_NAMES = {"train": ("train", "training"), "test": ("test", "testing")}


class ImageFolderError(StageError):
    """The folder's layout or files are not a usable image dataset."""


@dataclass
class FolderImages:
    images: np.ndarray
    labels: np.ndarray
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def resolve_source(source: str | None, cache_dir: Path) -> tuple[Path, dict]:
    """The folder that source (data.source) names and its provenance for the manifest: a local
    directory as is, or a local archive of one extracted under cache_dir."""
    path = local_path(source) if source else None
    if path is not None and path.is_dir():
        return path, {"source": str(path)}
    if path is not None and path.is_file() and is_archive(path):
        root, digest = unpacked_folder(path, cache_dir)
        return root, {"source": str(path), "source_sha256": digest}
    raise ImageFolderError(
        "data.source must name a local directory of class folders for dataset image_folder, or a "
        f"{', '.join(ARCHIVE_SUFFIXES)} archive of one (a path or file:// URL; remote URLs are not "
        f"supported, download the archive first), got {source and redact(source)!r}"
    )


def split_folders(root: Path) -> dict[str, Path] | None:
    """The train and test folders under root, or None when root holds the class folders."""
    children = {child.name.lower(): child for child in root.iterdir() if child.is_dir()}
    found = {split: next((children[n] for n in names if n in children), None) for split, names in SPLIT_NAMES.items()}
    folders = {split: folder for split, folder in found.items() if folder is not None}
    return folders if len(folders) == len(SPLIT_NAMES) else None


def class_names(folders: list[Path]) -> list[str]:
    names = sorted(
        {
            child.name
            for folder in folders
            for child in folder.iterdir()
            if child.is_dir() and not child.name.startswith(".")
        }
    )
    if len(names) < 2:
        where = ", ".join(str(folder) for folder in folders)
        raise ImageFolderError(
            f"{where}: found {len(names)} class folder(s) {names}; a classification dataset needs at least 2"
        )
    return names


def read_folder(folder: Path, names: list[str], size: tuple[int, int, int], skip_unreadable: bool) -> FolderImages:
    """Every image under folder/<class name>/, converted to size (height, width, channels)."""
    images, labels, unreadable = [], [], []
    for label, name in enumerate(names):
        class_dir = folder / name
        paths = sorted(class_dir.iterdir()) if class_dir.is_dir() else []
        for path in paths:
            if path.name.startswith(".") or path.is_dir():
                continue
            try:
                images.append(_read_image(path, *size))
                labels.append(label)
            except ImageFolderError as error:
                unreadable.append((str(path), str(error)))
    if unreadable and not skip_unreadable:
        listing = "\n  ".join(f"{path}: {reason}" for path, reason in unreadable)
        raise ImageFolderError(
            f"{len(unreadable)} unreadable file(s) (set data.skip_unreadable: true to skip them):\n  {listing}"
        )
    for skipped, reason in unreadable:
        logger.warning("skipping unreadable file %s: %s", skipped, reason)
    stacked = np.stack(images) if images else np.zeros((0, *size), np.uint8)
    return FolderImages(stacked, np.asarray(labels, np.int64), unreadable)


def _read_image(path: Path, height: int, width: int, channels: int) -> np.ndarray:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageFolderError(f"not an image file; allowed suffixes: {', '.join(IMAGE_SUFFIXES)}")
    try:
        with Image.open(path) as image:
            image.load()
            return fit_image(image, height, width, channels)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageFolderError(f"cannot decode image: {error}") from None
