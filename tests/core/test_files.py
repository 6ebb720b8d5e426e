"""Outputs replaced whole: flushed to disk before they are renamed into place, and a directory
swapped in without a moment where neither the old nor the new one exists."""

import os
import shutil
from pathlib import Path

import pytest

from imagepipe.core import files
from imagepipe.core.files import atomic_directory, replace_whole

DEAD_PID = 2**22 + 1  # above Linux's largest pid_max: no process has it


@pytest.fixture
def disk_events(monkeypatch) -> list[tuple[str, str]]:
    """The fsyncs and renames made, in order, with the paths they were made on."""
    events: list[tuple[str, str]] = []
    fsync, replace, rename = os.fsync, os.replace, os.rename

    def recorded_fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        fsync(descriptor)

    def recorded(kind, call):
        def wrapper(source, target, *args, **kwargs):
            events.append((kind, f"{source} -> {target}"))
            call(source, target, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded("rename", replace))
    monkeypatch.setattr(os, "rename", recorded("rename", rename))
    return events


def test_a_replaced_file_is_on_disk_before_its_name_moves_and_the_rename_after(tmp_path, disk_events):
    path = tmp_path / "best_score.json"
    path.write_text("old")
    replace_whole(path, lambda scratch: scratch.write_text("new"))

    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["best_score.json"]
    (scratch,) = {Path(event[1].split(" -> ")[0]) for event in disk_events if event[0] == "rename"}
    assert disk_events == [
        ("fsync", str(scratch)),
        ("rename", f"{scratch} -> {path}"),
        ("fsync", str(tmp_path)),
    ]


def test_a_failed_write_leaves_the_file_as_it_was_and_no_scratch(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")

    def fail(scratch):
        scratch.write_text("half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        replace_whole(path, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"] and path.read_text() == "old"


def directory_with(path: Path, content: str, count: int = 20) -> None:
    (path / "nested").mkdir(parents=True)
    for index in range(count):
        (path / "nested" / f"shard-{index}.npy").write_text(content)


def test_a_directory_is_swapped_in_without_a_moment_where_none_exists(tmp_path, monkeypatch, disk_events):
    path = tmp_path / "processed"
    directory_with(path, "old")
    gaps = []
    rmtree = shutil.rmtree

    def watched_rmtree(target, *args, **kwargs):
        rmtree(target, *args, **kwargs)
        if not path.exists():
            gaps.append(f"{path} missing after removing {target}")

    monkeypatch.setattr(shutil, "rmtree", watched_rmtree)
    with atomic_directory(path) as scratch:
        directory_with(scratch, "new")

    assert gaps == []
    assert {p.read_text() for p in path.rglob("*.npy")} == {"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]  # old one and scratch gone
    synced = [Path(name) for kind, name in disk_events if kind == "fsync"]
    scratch_files = {scratch / "nested" / f"shard-{index}.npy" for index in range(20)}
    assert scratch_files | {scratch / "nested", scratch} <= set(synced[:-1])
    assert synced[-1] == tmp_path  # the swap itself, flushed last


def test_a_block_that_fails_keeps_the_old_directory(tmp_path):
    path = tmp_path / "processed"
    directory_with(path, "old", count=2)
    with pytest.raises(RuntimeError, match="bad shard"), atomic_directory(path) as scratch:
        directory_with(scratch, "new", count=1)
        raise RuntimeError("bad shard")
    assert {p.read_text() for p in path.rglob("*.npy")} == {"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


def test_where_directories_cannot_be_swapped_the_old_one_is_put_back_after_a_kill(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_exchange", lambda first, second: False)
    path = tmp_path / "processed"
    directory_with(path, "old", count=2)
    with atomic_directory(path) as scratch:
        directory_with(scratch, "new", count=2)
    assert {p.read_text() for p in path.rglob("*.npy")} == {"new"}

    # A run killed between its two renames: the old directory aside, nothing at path.
    path.rename(tmp_path / f".processed.old-{DEAD_PID}")
    (tmp_path / f".processed.partial-{DEAD_PID}").mkdir()
    with pytest.raises(RuntimeError), atomic_directory(path):
        assert {p.read_text() for p in path.rglob("*.npy")} == {"new"}, "not restored before the block"
        raise RuntimeError("this run fails too")
    assert {p.read_text() for p in path.rglob("*.npy")} == {"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


def test_leftovers_of_a_run_still_going_are_not_touched(tmp_path):
    path = tmp_path / "processed"
    directory_with(path, "old", count=1)
    other_run = tmp_path / f".processed.partial-{os.getppid()}"
    other_run.mkdir()
    with atomic_directory(path) as scratch:
        directory_with(scratch, "new", count=1)
    assert other_run.exists()
