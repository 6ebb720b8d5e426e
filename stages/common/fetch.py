"""Fetch published files from an ordered list of sources, verified by sha256.

A source is an http(s)/ftp base URL (downloaded with pooch into a cache, with a progress bar),
a local directory, or a `file://` URL of one. Sources are tried in order; the first one that
yields every file with a matching checksum wins. A mirror may hold a file gzipped as published
or decompressed, and may recompress it (Debian's package strips the gzip header's file name),
so a file is accepted when either its own sha256 or that of its decompressed content matches.
"""

import gzip
import hashlib
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pooch
import requests

from stages.common.cli import StageError

logger = logging.getLogger(__name__)

REMOTE_SCHEMES = ("http", "https", "ftp")
DOWNLOAD_TIMEOUT_SECONDS = 60


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
        except (DownloadError, OSError, ValueError, requests.RequestException) as error:
            logger.warning("source %s failed: %s", source, error)
            failures.append(f"{source}: {error}")
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
        raise DownloadError(f"unsupported source scheme {parsed.scheme!r} in {source!r}; allowed: {allowed}, or a directory")
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
    downloader = pooch.HTTPDownloader(progressbar=True, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    path = pooch.retrieve(
        url=base_url.rstrip("/") + "/" + resource.filename,
        known_hash=f"sha256:{resource.sha256}",
        fname=resource.filename,
        path=cache_dir,
        downloader=downloader,
    )
    return Path(path)


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
