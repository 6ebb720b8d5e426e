"""Shared fixtures: params built from the project's params.yaml, and small real datasets made on disk."""

import copy
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from imagepipe.core.params import parse_params
from imagepipe.data.sources.datasets import IdxSpec
from imagepipe.data.sources.fetch import Resource
from imagepipe.data.sources.idx import encode_idx
from tests.helpers.data import IDX_NAMES, ROOT, balanced_labels, write_image

# Usage telemetry off in every process the tests start, as the README's set-up does: there is
# no internet here, and a collector that cannot be reached only adds noise to the servers' logs.
os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", PREFECT_SERVER_ANALYTICS_ENABLED="false")


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
            write_image(
                root / name / f"img #{index} ñ{suffix}", mode, (20 + index, 30 - index), seed=label * 100 + index
            )
    return root


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A real MLflow sqlite store in tmp_path, the working directory for the test."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # mlflow.set_experiment() exports the experiment's id for child processes: one set by an
    # earlier test in this process names an experiment this fresh store does not have.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
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
