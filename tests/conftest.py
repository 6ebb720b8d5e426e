"""Shared fixtures: params built from the project's params.yaml, and small real datasets made on disk."""

import copy
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from stages.common.datasets import IdxSpec
from stages.common.fetch import Resource
from stages.common.idx import encode_idx
from stages.common.params import parse_params

ROOT = Path(__file__).resolve().parents[1]
# Usage telemetry off in every process the tests start, as the README's set-up does: there is
# no internet here, and a collector that cannot be reached only adds noise to the servers' logs.
os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", PREFECT_SERVER_ANALYTICS_ENABLED="false")
IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def raw_params() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))


@pytest.fixture
def make_params(raw_params):
    """Params from params.yaml with {"section": {"key": value}} overrides applied."""
    def make(**sections):
        raw = copy.deepcopy(raw_params)
        for section, values in sections.items():
            raw[section] = {**raw[section], **values} if isinstance(values, dict) else values
        return parse_params(raw)
    return make


def balanced_labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


@pytest.fixture
def idx_mirror(tmp_path) -> tuple[Path, IdxSpec]:
    """A local mirror of four gzipped IDX files (10 classes, 20+10 images each) and a spec pinning them."""
    rng = np.random.default_rng(1)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    arrays = {
        IDX_NAMES[0]: rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
        IDX_NAMES[1]: balanced_labels(10, 20).astype(np.uint8),
        IDX_NAMES[2]: rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        IDX_NAMES[3]: balanced_labels(10, 10).astype(np.uint8),
    }
    resources = []
    for name, array in arrays.items():
        compressed = gzip.compress(encode_idx(array), mtime=0)
        (mirror / name).write_bytes(compressed)
        resources.append(Resource(name, hashlib.sha256(compressed).hexdigest()))
    spec = IdxSpec(tuple(f"class {i}" for i in range(10)), (str(mirror),), *resources)
    return mirror, spec


def write_image(path: Path, mode: str, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three classes with odd names, mixed sizes and modes (grayscale, RGB, RGBA), PNG and JPEG."""
    root = tmp_path / "fruits"
    modes = ["L", "RGB", "RGBA"]
    for label, name in enumerate(["Apple Braeburn", "banana_ü", "cherry (red)"]):
        (root / name).mkdir(parents=True)
        for index in range(12):
            suffix = ".png" if index % 2 else ".JPG"
            mode = modes[index % 3] if suffix == ".png" else "RGB"
            write_image(root / name / f"img #{index} ñ{suffix}", mode, (20 + index, 30 - index), seed=label * 100 + index)
    return root


def write_processed(directory: Path, num_classes: int = 3, per_class: int = 20, size: int = 28, seed: int = 0) -> Path:
    """A tiny preprocess output (train/val/test .npy and classes.json) of learnable blobs."""
    import json

    from stages.common.arrays import Split
    from stages.preprocess import prepare

    rng = np.random.default_rng(seed)
    def make(count):
        labels = balanced_labels(num_classes, count, seed)
        images = rng.integers(0, 60, (len(labels), size, size, 1))
        for index, label in enumerate(labels):
            band = slice(label * size // num_classes, (label + 1) * size // num_classes)
            images[index, band, :, 0] += 180
        return Split(images.astype(np.uint8), labels)
    arrays = prepare(make(per_class), make(per_class // 2), num_classes, 0.25, "float16", seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in arrays.items():
        np.save(directory / f"{name}_images.npy", images)
        np.save(directory / f"{name}_labels.npy", labels)
    (directory / "classes.json").write_text(json.dumps([f"class {i}" for i in range(num_classes)]))
    return directory


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A real MLflow sqlite store in tmp_path, the working directory for the test."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def skewed_image_folder(tmp_path) -> Path:
    """An image folder whose classes are 60 cats and 12 dogs: validation must refuse it."""
    folder = tmp_path / "skewed"
    for name, count in (("cats", 60), ("dogs", 12)):
        (folder / name).mkdir(parents=True)
        for index in range(count):
            write_image(folder / name / f"{index}.png", "L", (28, 28), seed=index)
    return folder
