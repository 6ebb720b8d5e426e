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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from imagepipe.data.sources.images import fit_image

# Files submitted to the workers at a time: bounds the decoded images waiting to be written.
WINDOW = 256
# Below this many files, starting worker processes costs more than it saves.
MIN_FOR_PROCESSES = 256


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray | None  # None when the file could not be decoded
    error: str = ""
    cached: bool = False
    location: Path | None = None  # the cache entry holding the image, between processes


def decode_files(
    paths: list[Path], size: tuple[int, int, int], cache_dir: Path | None, workers: int | None = None
) -> Iterator[Decoded]:
    """Each file's image at size (height, width, channels), in the order of paths.

    With a cache (what download uses), worker processes decode into the cache and hand back
    only where each image is; this process reads the images from there in order. Copying every
    decoded image between processes cost more than decoding a small JPEG when measured, and
    threads are held back by the GIL-bound parts of decoding (conversions, array copies).
    Without a cache, threads decode.
    """
    workers = workers or len(os.sched_getaffinity(0))
    if workers == 1 or len(paths) < MIN_FOR_PROCESSES:
        yield from (decode_file(path, size, cache_dir) for path in paths)
    elif cache_dir is None:
        with ThreadPoolExecutor(workers, thread_name_prefix="decode") as threads:
            for start in range(0, len(paths), WINDOW):
                yield from threads.map(lambda path: decode_file(path, size, None), paths[start : start + WINDOW])
    else:
        # spawn, not fork: the stage may hold threads (logging, pooch) that a fork would copy mid-lock.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as processes:
            jobs = [(path, size, cache_dir) for path in paths]
            for start in range(0, len(jobs), WINDOW):
                for located in processes.map(_into_cache, jobs[start : start + WINDOW], chunksize=16):
                    yield _read_located(located)


def _into_cache(job: tuple[Path, tuple[int, int, int], Path]) -> Decoded:
    """decode_file in a worker process, returning where the image is instead of the image."""
    decoded = decode_file(*job)
    return decoded if decoded.image is None else Decoded(None, cached=decoded.cached, location=decoded.location)


def _read_located(decoded: Decoded) -> Decoded:
    if decoded.location is None:
        return decoded
    return Decoded(np.load(decoded.location), cached=decoded.cached)


def decode_file(path: Path, size: tuple[int, int, int], cache_dir: Path | None) -> Decoded:
    try:
        payload = Path(path).read_bytes()
    except OSError as error:
        return Decoded(None, f"cannot read: {error.strerror or error}")
    cached = _cache_path(cache_dir, payload, size) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return Decoded(np.load(cached), cached=True, location=cached)
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
    return Decoded(array, location=cached)


def _cache_path(cache_dir: Path, payload: bytes, size: tuple[int, int, int]) -> Path:
    key = hashlib.sha256(payload).hexdigest()
    return Path(cache_dir) / "x".join(map(str, size)) / key[:2] / f"{key}.npy"


def _store(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.stem}-{os.getpid()}.npy")
    np.save(scratch, array)
    scratch.replace(path)
