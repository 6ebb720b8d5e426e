"""Fetch published files from an ordered list of sources, verified by sha256.

A source is an http(s) base URL (downloaded with pooch into a cache, with a progress bar),
a local directory, or a `file://` URL of one. Sources are tried in order; the first one that
yields every file with a matching checksum wins. A mirror may hold a file gzipped as published
or decompressed, and may recompress it (Debian's package strips the gzip header's file name),
so a file is accepted when either its own sha256 or that of its decompressed content matches.

A remote source that stalls is given up after DOWNLOAD_TIMEOUT_SECONDS without a byte, and
one that trickles after DOWNLOAD_DEADLINE_SECONDS for a file, and the next source is tried.
Sources are redacted (imagepipe.core.redact) wherever they are logged or reported.
"""

import gzip
import hashlib
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pooch
import requests
import urllib3
from tqdm import tqdm

from imagepipe.core.errors import StageError
from imagepipe.core.redact import RedactingFilter, redact

logger = logging.getLogger(__name__)
# pooch logs each URL it downloads as given, credentials included.
pooch.get_logger().addFilter(RedactingFilter())

REMOTE_SCHEMES = ("http", "https")  # what requests can fetch
DOWNLOAD_TIMEOUT_SECONDS = 60  # each connection and each read
# requests' timeout bounds each read, so a server sending a byte at a time would hold a file
# forever: the whole file gets this long. The largest published file (26 MB) needs 30 kB/s.
DOWNLOAD_DEADLINE_SECONDS = 900
CHUNK_BYTES = 1 << 16


class DownloadError(StageError):
    """No source gave a complete, verified copy of the requested files."""


@dataclass(frozen=True)
class Resource:
    filename: str
    sha256: str
    payload_sha256: str | None = None


def fetch_all(resources: list[Resource], sources: list[str], cache_dir: Path) -> tuple[str, dict[str, bytes]]:
    """The first source that has every resource, and their decompressed, verified content."""
    failures = []
    for source in sources:
        try:
            return source, {res.filename: _fetch_one(res, source, cache_dir) for res in resources}
        # urllib3's errors come from reading the body (a read timeout, a connection cut short).
        except (
            DownloadError,
            OSError,
            ValueError,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
        ) as error:
            logger.warning("source %s failed: %s", redact(source), redact(str(error)))
            failures.append(redact(f"{source}: {error}"))
    tried = "\n  - ".join(failures) or "(no sources given)"
    raise DownloadError(f"no source gave verified files; tried:\n  - {tried}")


def local_path(source: str) -> Path | None:
    """The directory a source names, or None for a remote URL."""
    parsed = urlparse(source)
    if parsed.scheme in REMOTE_SCHEMES:
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme:
        allowed = ", ".join(REMOTE_SCHEMES + ("file",))
        raise DownloadError(
            f"unsupported source scheme {parsed.scheme!r} in {redact(source)!r}; allowed: {allowed}, or a directory"
        )
    return Path(source)


def _fetch_one(resource: Resource, source: str, cache_dir: Path) -> bytes:
    directory = local_path(source)
    if directory is None:
        return _verified_content(_download(resource, source, cache_dir), resource)
    if not directory.is_dir():
        raise DownloadError(f"{directory} is not a directory")
    for name in (resource.filename, resource.filename.removesuffix(".gz")):
        if (directory / name).is_file():
            return _verified_content(directory / name, resource)
    raise DownloadError(f"{resource.filename} not found in {directory}")


def _download(resource: Resource, base_url: str, cache_dir: Path) -> Path:
    path = pooch.retrieve(
        url=base_url.rstrip("/") + "/" + resource.filename,
        known_hash=f"sha256:{resource.sha256}",
        fname=resource.filename,
        path=cache_dir,
        downloader=_stream_to_file,
    )
    return Path(path)


def _stream_to_file(url: str, output_file: str, pooch_instance: object) -> None:
    """A pooch downloader (pooch_instance is part of its protocol): url into output_file with a
    progress bar, within the deadline.

    read1 returns whatever bytes have arrived, so the deadline is checked as they come; a fixed
    chunk size (iter_content) would wait for a whole chunk of a trickle first."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_SECONDS
    with (
        requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        open(output_file, "wb") as output,
    ):
        response.raise_for_status()
        size = int(response.headers.get("Content-Length", 0)) or None
        with tqdm(total=size, unit="B", unit_scale=True, leave=True) as progress:
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                if time.monotonic() > deadline:
                    raise DownloadError(
                        f"{redact(url)} still incomplete after {DOWNLOAD_DEADLINE_SECONDS} s: the mirror is too slow"
                    )
                output.write(chunk)
                progress.update(len(chunk))


def _verified_content(path: Path, resource: Resource) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    compressed = path.suffix == ".gz"
    if digest == resource.sha256:
        return _gunzip(data, path) if compressed else data
    expected = f"expected {resource.sha256}"
    if resource.payload_sha256 is None:
        raise DownloadError(f"checksum mismatch for {path}: sha256 is {digest}, {expected}")
    payload = _gunzip(data, path, digest) if compressed else data
    payload_digest = hashlib.sha256(payload).hexdigest()
    if payload_digest != resource.payload_sha256:
        raise DownloadError(
            f"checksum mismatch for {path}: sha256 is {digest} (content {payload_digest}), "
            f"{expected} (content {resource.payload_sha256})"
        )
    return payload


def _gunzip(data: bytes, path: Path, digest: str | None = None) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        mismatch = f"sha256 {digest} does not match and " if digest else ""
        raise DownloadError(f"{path} is truncated or corrupt: {mismatch}it does not decompress ({error})") from None
