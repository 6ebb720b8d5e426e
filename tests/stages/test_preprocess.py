import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from imagepipe.data.preprocessing import normalize, one_hot, prepare
from imagepipe.data.storage import Split
from tests.helpers.data import balanced_labels

ROOT = Path(__file__).resolve().parents[2]


def test_normalize_is_exact_scaling():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    scaled = normalize(pixels, "float32")
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.ravel(), np.arange(256) / 255, rtol=1e-7)
    assert normalize(pixels, "float16").min() == 0 and normalize(pixels, "float16").max() == 1


def test_one_hot():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_prepare_stratified_and_seeded():
    labels = balanced_labels(4, 50)
    images = np.random.default_rng(0).integers(0, 256, (200, 8, 8, 1), dtype=np.uint8)
    train, test = Split(images, labels), Split(images[:40], labels[:40])
    arrays = prepare(train, test, 4, 0.2, "float16", seed=3)
    assert {name: len(y) for name, (_, y) in arrays.items()} == {"train": 160, "val": 40, "test": 40}
    assert arrays["val"][1].sum(axis=0).tolist() == [10, 10, 10, 10]
    again = prepare(train, test, 4, 0.2, "float16", seed=3)
    assert np.array_equal(arrays["val"][0], again["val"][0])
    other = prepare(train, test, 4, 0.2, "float16", seed=4)
    assert not np.array_equal(arrays["val"][0], other["val"][0])


def test_refuses_data_whose_validation_failed(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"success": False}))
    out = tmp_path / "processed"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.preprocess",
            "--raw",
            str(tmp_path),
            "--validation",
            str(tmp_path / "summary.json"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1 and "records a failed validation" in result.stderr
    assert not out.exists()
