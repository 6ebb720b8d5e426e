"""Files written whole: a scratch copy renamed into place, so a crash never leaves half a file."""

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
