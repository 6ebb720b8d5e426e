import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from imagepipe.core.errors import StageError
from imagepipe.data.preprocessing import write_encoding
from imagepipe.data.scenes import load_scenes, mask_class_names
from imagepipe.data.shards import write_manifest, write_split
from stages import compose_scenes
from tests.helpers.data import balanced_labels

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Apple Braeburn", "banana_ü", "cherry (red)"]
# Each split's items are drawn in their own colour channel, so a scene shows where its items came from.
CHANNEL = {"train": 0, "val": 1, "test": 2}
SCENES = {"train_scenes": 30, "val_scenes": 12, "test_scenes": 12}


def write_rgb_processed(directory: Path, names: list[str], per_class: int = 12) -> Path:
    """A tiny preprocess output of 32x32 RGB items: a bright band (placed by class) on black."""
    entries = {}
    directory.mkdir(parents=True)
    for split, channel in CHANNEL.items():
        labels = balanced_labels(3, per_class, seed=channel)
        images = np.zeros((len(labels), 32, 32, 3), np.uint8)
        for index, label in enumerate(labels):
            images[index, 4 + 8 * label : 12 + 8 * label, 4:28, channel] = 200
        entries[split] = write_split(directory, split, iter([(images, labels)]), (32, 32, 3))
    write_manifest(directory, entries)
    write_encoding(directory, len(names))
    (directory / "classes.json").write_text(json.dumps(names))
    return directory


@pytest.fixture
def workspace(tmp_path, raw_params) -> Path:
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(raw_params | {"compose_scenes": raw_params["compose_scenes"] | SCENES})
    )
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    return tmp_path


def run_compose(workspace: Path, data: Path) -> subprocess.CompletedProcess:
    command = ["-m", "stages.compose_scenes", "--params", str(workspace / "params.yaml"), "--data", str(data)]
    command += ["--validation", str(workspace / "summary.json"), "--out", str(workspace / "scenes")]
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_stage_composes_each_split_from_its_own_items(workspace):
    result = run_compose(workspace, write_rgb_processed(workspace / "processed", NAMES))
    assert result.returncode == 0, result.stderr
    out = workspace / "scenes"
    assert mask_class_names(out) == ["background", *NAMES]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] and summary["scenes"] == {"train": 30, "val": 12, "test": 12}
    assert sorted(path.name for path in out.iterdir()) == [
        "classes.json",
        "summary.json",
        "test.npz",
        "train.npz",
        "val.npz",
    ]
    for split, channel in CHANNEL.items():
        scenes = load_scenes(out, split)
        assert scenes.images.shape == (SCENES[f"{split}_scenes"], 64, 64, 3)
        items = scenes.images[scenes.masks > 0]
        # No leakage: every item pixel is in the split's own channel.
        assert (items[:, channel] > 0).all() and (np.delete(items, channel, axis=1) == 0).all()


def compose_in_process(workspace: Path, data: Path, monkeypatch) -> None:
    """main() in this process (GX is imported once for the tests, not in each subprocess)."""
    arguments = ["--params", str(workspace / "params.yaml"), "--data", str(data), "--validation"]
    arguments += [str(workspace / "summary.json"), "--out", str(workspace / "scenes")]
    monkeypatch.setattr(sys, "argv", ["compose_scenes", *arguments])
    compose_scenes.main()


def test_refuses_data_whose_validation_failed(workspace, monkeypatch):
    (workspace / "summary.json").write_text(json.dumps({"success": False}))
    with pytest.raises(StageError, match="summary.json records a failed validation"):
        compose_in_process(workspace, write_rgb_processed(workspace / "processed", NAMES), monkeypatch)
    assert not (workspace / "scenes").exists()


def test_failed_expectations_stop_the_stage_and_leave_nothing(workspace, monkeypatch):
    # classes.json names a class that no item has: the scenes cannot show it.
    data = write_rgb_processed(workspace / "processed", [*NAMES, "durian"])
    with pytest.raises(compose_scenes.ScenesInvalid, match="composed scenes failed 6 expectation") as failed:
        compose_in_process(workspace, data, monkeypatch)
    for split in CHANNEL:
        assert f"{split}_classes: every class appears among items: 1 of 4 rows fail (durian=0)" in str(failed.value)
    assert sorted(path.name for path in workspace.iterdir()) == ["params.yaml", "processed", "summary.json"]
