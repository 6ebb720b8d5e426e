import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from imagepipe.data.preprocessing import normalize, one_hot, split_indices
from imagepipe.data.shards import open_split
from imagepipe.data.sources.raw import ArraySplit
from imagepipe.data.storage import save_raw

ROOT = Path(__file__).resolve().parents[2]


def test_normalize_is_exact_scaling():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    scaled = normalize(pixels)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.ravel(), np.arange(256) / 255, rtol=1e-7)
    assert scaled.min() == 0 and scaled.max() == 1


def test_one_hot():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_split_is_stratified_seeded_and_train_is_shuffled():
    labels = np.repeat(np.arange(4), 50)  # sorted by class, as an image folder lists them
    chosen = split_indices(labels, 0.2, seed=3)
    assert len(chosen["train"]) == 160 and len(chosen["val"]) == 40
    assert np.bincount(labels[chosen["val"]]).tolist() == [10, 10, 10, 10]
    assert not set(chosen["train"]) & set(chosen["val"])
    # Shuffled: the first 40 train images are not all one class, so a streaming buffer mixes them.
    assert len(set(labels[chosen["train"][:40]])) == 4
    again, other = split_indices(labels, 0.2, seed=3), split_indices(labels, 0.2, seed=4)
    assert np.array_equal(chosen["train"], again["train"]) and not np.array_equal(chosen["val"], other["val"])


def test_stage_writes_shards_and_the_encoding(tmp_path):
    labels = np.repeat(np.arange(3), 40)
    images = np.random.default_rng(0).integers(0, 256, (120, 8, 8, 1), dtype=np.uint8)
    splits = {"train": ArraySplit(images, labels), "test": ArraySplit(images[:30], labels[:30])}
    save_raw(tmp_path / "raw", splits, (8, 8, 1), ["a", "b", "c"], {}, shard_bytes=8 * 8 * 25)
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    out = tmp_path / "processed"
    result = run_preprocess(tmp_path / "raw", tmp_path / "summary.json", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "shards.json").read_text())["splits"]
    assert {name: entry["count"] for name, entry in manifest.items()} == {"train": 108, "val": 12, "test": 30}
    assert json.loads((out / "preprocessing.json").read_text()) == {
        "scale": 1 / 255,
        "offset": 0.0,
        "labels": "one_hot",
        "num_classes": 3,
    }
    train = open_split(out, "train")
    assert train.dtype == np.uint8
    # Every processed train image is the raw image its label says, in the shuffled order.
    stored = np.concatenate([pixels for pixels, _ in train.iter_shards()])
    index = {images[i].tobytes(): i for i in range(120)}
    assert all(labels[index[image.tobytes()]] == label for image, label in zip(stored, train.labels(), strict=True))


def run_preprocess(raw: Path, summary: Path, out: Path) -> subprocess.CompletedProcess:
    command = ["-m", "stages.preprocess", "--raw", str(raw), "--validation", str(summary), "--out", str(out)]
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_refuses_data_whose_validation_failed(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"success": False}))
    out = tmp_path / "processed"
    result = run_preprocess(tmp_path, tmp_path / "summary.json", out)
    assert result.returncode == 1 and "records a failed validation" in result.stderr
    assert not out.exists()
