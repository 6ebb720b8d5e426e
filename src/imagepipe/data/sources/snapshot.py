"""What a local data source looks like now, cheaply: the listing DVC compares to rerun download.

An image folder outside the repository is invisible to DVC, so a stage that DVC always runs
(`scan`) writes this snapshot and download depends on it: DVC reruns download exactly when the
snapshot changes. A folder is summarised by every file's relative path, size and modification
time (what DVC itself uses to tell whether a file changed), read from the directory entries
without opening a file; an archive by its own size and time; a remote source by its URL alone
(its files are verified by hash when downloaded).
"""

import hashlib
import os
from pathlib import Path

from imagepipe.core.redact import redact
from imagepipe.core.sections import DataParams
from imagepipe.data.sources.fetch import local_path


def snapshot(data: DataParams) -> dict:
    """{"dataset", "source"} and, for a local source, its file count, bytes and listing hash."""
    state: dict = {"dataset": data.dataset, "source": redact(data.source) if data.source else None}
    path = local_path(data.source) if data.source else None
    if path is None or not path.exists():
        return state  # download reports a missing source, with what is allowed
    digest, files, size = hashlib.sha256(), 0, 0
    for relative, stat in _entries(path):
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        files, size = files + 1, size + stat.st_size
    return state | {"files": files, "bytes": size, "listing_sha256": digest.hexdigest()}


def _entries(path: Path):
    """(relative path, stat) of every file, in a fixed order (sorted within each directory,
    directories depth first): memory holds one directory's listing, not the whole tree's."""
    if path.is_file():
        yield path.name, path.stat()
        return
    for directory, subdirectories, names in os.walk(path, followlinks=True):
        subdirectories.sort()
        for name in sorted(names):
            full = os.path.join(directory, name)
            yield os.path.relpath(full, path), os.stat(full)
