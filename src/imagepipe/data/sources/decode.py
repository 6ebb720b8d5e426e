"""Decoding image files on every core, through a content-addressed cache of decoded images.

A file's cache key is the SHA-256 of its bytes and the target size, so a renamed or copied file
is not decoded twice, an edited one is decoded again, and adding images to a large folder
decodes only the new ones. The cache lives outside DVC's outputs (beside the download cache):
deleting it costs time, never correctness.
"""

import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imagepipe.data.sources.images import fit_image

# Files submitted to the workers at a time: bounds the decoded images waiting to be written.
WINDOW = 256


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray | None  # None when the file could not be decoded
    error: str = ""
    cached: bool = False


def decode_files(
    paths: list[Path], size: tuple[int, int, int], cache_dir: Path | None, workers: int | None = None
) -> Iterator[Decoded]:
    """Each file's image at size (height, width, channels), in the order of paths.

    Threads, not processes: Pillow's decoding and resampling, hashlib and file I/O release the
    GIL, and a process pool spent more handing decoded images (or their cache entries) back
    than it gained, when measured (docs/storage.md).
    """
    workers = workers or len(os.sched_getaffinity(0))
    if workers == 1:
        yield from (decode_file(path, size, cache_dir) for path in paths)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as threads:
        for start in range(0, len(paths), WINDOW):
            yield from threads.map(lambda path: decode_file(path, size, cache_dir), paths[start : start + WINDOW])


def decode_file(path: Path, size: tuple[int, int, int], cache_dir: Path | None) -> Decoded:
    try:
        payload = Path(path).read_bytes()
    except OSError as error:
        return Decoded(None, f"cannot read: {error.strerror or error}")
    cached = _cache_path(cache_dir, payload, size) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return Decoded(np.load(cached), cached=True)
        except (OSError, ValueError):  # a torn cache entry: decode again and replace it
            pass
    try:
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            array = fit_image(image, *size)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return Decoded(None, f"cannot decode image: {error}")
    if cached is not None:
        _store(cached, array)
    return Decoded(array)


def _cache_path(cache_dir: Path, payload: bytes, size: tuple[int, int, int]) -> Path:
    key = hashlib.sha256(payload).hexdigest()
    return Path(cache_dir) / "x".join(map(str, size)) / key[:2] / f"{key}.npy"


def _store(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.stem}-{os.getpid()}.npy")
    np.save(scratch, array)
    scratch.replace(path)
