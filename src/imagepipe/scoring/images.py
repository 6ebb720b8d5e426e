"""New images to score: a folder (any depth, no labels), a local archive of one, or a file:// URL.

Files are images by their suffix, as for an image folder dataset (imagepipe.data.sources.image_folder);
other files (a `Thumbs.db`, a `README.txt`) and hidden ones (`.DS_Store`, macOS's `__MACOSX`) are
skipped and counted. Each image is decoded once for its statistics (what validation checks) and
again, a batch at a time, for scoring, so memory holds one batch whatever the folder's size.
"""

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imagepipe.core.errors import StageError
from imagepipe.core.redact import redact
from imagepipe.data.sources.archives import ARCHIVE_SUFFIXES, is_archive, unpacked_folder
from imagepipe.data.sources.fetch import local_path
from imagepipe.data.sources.image_folder import IMAGE_SUFFIXES
from imagepipe.data.sources.images import fit_image

logger = logging.getLogger(__name__)
# Channels a PIL mode holds; a palette image's colours are RGB. Others count their bands.
PALETTE_CHANNELS = 3


class ImageSourceError(StageError):
    """The source of new images is not a folder or archive of images."""


@dataclass(frozen=True)
class ImageStats:
    """What validation checks of one file: readable, its size as stored, its pixel range."""

    path: str  # relative to the source's folder
    readable: bool
    error: str = ""
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    pixel_min: float | None = None
    pixel_max: float | None = None
    pixel_mean: float | None = None
    missing_pixels: int | None = None


def resolve_folder(source: str, cache_dir: Path) -> Path:
    """The folder source names: a directory as is, or a local archive extracted under cache_dir."""
    path = local_path(source)
    if path is not None and path.is_dir():
        return path
    if path is not None and path.is_file() and is_archive(path):
        return unpacked_folder(path, cache_dir)[0]
    raise ImageSourceError(
        f"the images to score must be a local directory or a {', '.join(ARCHIVE_SUFFIXES)} archive of one "
        f"(a path or file:// URL; download remote files first), got {redact(source)!r}"
    )


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """The image files under folder (recursively, sorted) and the other files skipped."""
    images: list[Path] = []
    skipped: list[Path] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_dir() or any(part.startswith(".") or part == "__MACOSX" for part in relative):
            continue
        (images if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
    if skipped:
        logger.warning("skipping %d file(s) that are not images, e.g. %s", len(skipped), skipped[0])
    return images, skipped


def image_stats(path: Path, folder: Path) -> ImageStats:
    """The file's statistics as stored, before any conversion to the model's input."""
    name = path.relative_to(folder).as_posix()
    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(image)
            channels = PALETTE_CHANNELS if image.mode == "P" else len(image.getbands())
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return ImageStats(name, False, f"cannot decode image: {error}")
    if pixels.dtype == bool:  # a bilevel ("1") image, which PIL converts to 0 and 255
        pixels = pixels.astype(np.uint8) * 255
    missing = np.isnan(pixels) if np.issubdtype(pixels.dtype, np.floating) else np.zeros(pixels.shape, bool)
    present = pixels[~missing]
    return ImageStats(
        name,
        True,
        height=pixels.shape[0],
        width=pixels.shape[1],
        channels=channels,
        pixel_min=float(present.min()) if present.size else None,
        pixel_max=float(present.max()) if present.size else None,
        pixel_mean=float(present.mean()) if present.size else None,
        missing_pixels=int(missing.sum()),
    )


def batches(paths: list[Path], shape: tuple[int, int, int], batch_size: int) -> Iterator[tuple[list[Path], np.ndarray]]:
    """The images at shape (height, width, channels), uint8, batch_size files at a time."""
    for start in range(0, len(paths), batch_size):
        chosen = paths[start : start + batch_size]
        yield chosen, np.stack([read_image(path, shape) for path in chosen])


def read_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    with Image.open(path) as image:
        image.load()
        return fit_image(image, *shape)


def listing_digest(folder: Path, paths: list[Path]) -> str:
    """A fingerprint of the files (path, size, modification time): unchanged when nothing was
    added, removed or rewritten, without reading the images."""
    digest = hashlib.sha256()
    for path in paths:
        info = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}\t{info.st_size}\t{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()
