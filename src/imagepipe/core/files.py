"""Files and directories written whole: a scratch copy put in place only when it is complete.

"Whole" holds across a kill and across a power loss: the scratch's data is flushed to disk
(fsync) before it is renamed into place, and the rename itself is flushed (fsync of the parent
directory) before the call returns. Without the first fsync, a power loss soon after the rename
can leave the new name pointing at an empty or partial file (ext4 with delalloc, XFS).
"""

import ctypes
import errno
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step
_AT_FDCWD = -100


@contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """A scratch directory that replaces path only if the block completes.

    Readers see the old directory or the new one, never neither: the two are swapped in one
    step (Linux's renameat2 RENAME_EXCHANGE). Where the file system cannot swap, the old
    directory is renamed aside, then the new one into place; a kill between the two renames
    leaves path missing until the next call, which puts the old directory back first.
    """
    path = Path(path)
    _clear_leftovers(path)
    scratch = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _sync_tree(scratch)
    _swap_in(scratch, path)


def replace_whole(path: Path, write: Callable[[Path], object]) -> None:
    """write(scratch) beside path, then rename the scratch over path: a kill, a power loss, an
    exception or a full disk mid-write leaves path as it was (and, but for a kill or a power
    loss, no scratch behind)."""
    path = Path(path)
    scratch = path.with_name(f"partial-{os.getpid()}-{path.name}")
    try:
        write(scratch)
        _sync(scratch)
        scratch.replace(path)
        _sync(path.parent)
    finally:
        scratch.unlink(missing_ok=True)


def write_json(path: Path, value: Any) -> None:
    Path(path).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _sync(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_tree(root: Path) -> None:
    """Flush every file and directory under root, deepest first, root last."""
    for directory, _, names in os.walk(root, topdown=False):
        for name in names:
            _sync(Path(directory, name))
        _sync(Path(directory))


def _swap_in(scratch: Path, path: Path) -> None:
    """Put the complete scratch directory at path and remove what was there."""
    if path.exists() and _exchange(scratch, path):
        shutil.rmtree(scratch)  # now the old directory
    else:
        aside = path.with_name(f".{path.name}.old-{os.getpid()}")
        if path.exists():
            path.rename(aside)
        scratch.rename(path)
        shutil.rmtree(aside, ignore_errors=True)
    _sync(path.parent)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; False where this kernel or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # not Linux, or a C library older than glibc 2.28
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # e.g. an old kernel, NFS, some FUSE
        return False
    raise OSError(code, os.strerror(code), str(second))


def _clear_leftovers(path: Path) -> None:
    """Undo what a killed call left beside path: its scratch directory, or the old directory it
    had renamed aside before putting the new one in place."""
    for aside in path.parent.glob(f".{path.name}.old-*"):
        if _running(aside.name.rsplit("-", 1)[1]):
            continue
        if path.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            logger.warning("restoring %s, left aside by a run that was killed while replacing it", path)
            aside.rename(path)
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        if not _running(stale.name.rsplit("-", 1)[1]):
            shutil.rmtree(stale, ignore_errors=True)


def _running(pid: str) -> bool:
    return pid.isdigit() and psutil.pid_exists(int(pid))
