"""A directory of class subfolders of images, as Keras's `image_dataset_from_directory` reads it.

Class names are the folder names, sorted. The root may hold the class folders directly, or a
train and a test folder (`train`/`test`, `training`/`testing`, any case) that each hold them.
Files are images by their suffix (PNG, JPEG, BMP, GIF's first frame, WebP); any other file (a
`Thumbs.db`, a `README.txt`) is skipped and listed in the manifest. Image files that cannot be
decoded are reported by path: the load fails, or skips them when asked to, never silently.
The folder may also come as a local archive of it (imagepipe.data.sources.archives).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from imagepipe.core.errors import StageError
from imagepipe.core.redact import redact
from imagepipe.data.sources.archives import (
    ARCHIVE_SUFFIXES,
    is_archive,
    unpacked_folder,
)
from imagepipe.data.sources.fetch import local_path

logger = logging.getLogger(__name__)

# The suffixes Keras reads as images, and WebP, which Pillow decodes as well.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
SPLIT_NAMES = {"train": ("train", "training"), "test": ("test", "testing")}


class ImageFolderError(StageError):
    """The folder's layout or files are not a usable image dataset."""


@dataclass
class FolderListing:
    paths: list[Path]
    labels: list[int]
    skipped: list[tuple[str, str]]  # (path, reason) of files that are not images


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


def list_folder(folder: Path, names: list[str]) -> FolderListing:
    """Every image file under folder/<class name>/ (recursively, sorted) with its label; other
    files are listed as skipped, as Keras's `image_dataset_from_directory` ignores them."""
    listing = FolderListing([], [], [])
    for label, name in enumerate(names):
        class_dir = folder / name
        for path in sorted(class_dir.rglob("*")) if class_dir.is_dir() else []:
            if path.is_dir():
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                listing.paths.append(path)
                listing.labels.append(label)
            else:
                listing.skipped.append((str(path), f"not an image file; images end in {', '.join(IMAGE_SUFFIXES)}"))
    if listing.skipped:
        logger.warning("skipping %d file(s) that are not images, e.g. %s", len(listing.skipped), listing.skipped[0][0])
    return listing


def refuse_unreadable(unreadable: list[tuple[str, str]], skip_unreadable: bool) -> None:
    """Fails on image files that could not be decoded, unless asked to skip them (then logged)."""
    if unreadable and not skip_unreadable:
        listing = "\n  ".join(f"{path}: {reason}" for path, reason in unreadable[:20])
        more = f"\n  ... and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
        raise ImageFolderError(
            f"{len(unreadable)} unreadable image file(s) (set data.skip_unreadable: true to skip them):\n  "
            f"{listing}{more}"
        )
    for skipped, reason in unreadable:
        logger.warning("skipping unreadable file %s: %s", skipped, reason)
