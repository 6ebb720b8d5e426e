"""End to end: the real dvc.yaml in a temporary git + DVC repo, on small real data, on CPU."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.common.datasets import DEBIAN_FASHION_MNIST
from tests.conftest import write_image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    run(repo, "git", "init", "-q")
    run(repo, "dvc", "init", "-q")
    run(repo, "dvc", "config", "core.analytics", "false")
    return repo


def run(repo: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def repro(repo: Path, check: bool = True) -> tuple[list[str], subprocess.CompletedProcess]:
    result = run(repo, "dvc", "repro", check=check)
    return re.findall(r"Running stage '([^']+)'", result.stdout), result


def set_params(repo: Path, **sections) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_runs_once_then_only_what_changed(repo):
    set_params(repo, data={"dataset": "digits"})
    ran, _ = repro(repo)
    assert ran == ["download", "validate", "preprocess"]
    images = np.load(repo / "data/processed/train_images.npy", mmap_mode="r")
    assert images.shape[1:] == (28, 28, 1) and images.dtype == np.float16
    assert (repo / "data/validation/docs/index.html").exists()

    ran, result = repro(repo)
    assert ran == [] and "Data and pipelines are up to date" in result.stdout

    set_params(repo, validate={"max_kl_divergence": 0.1})
    assert repro(repo)[0] == ["validate"]
    set_params(repo, preprocess={"validation_split": 0.2})
    assert repro(repo)[0] == ["preprocess"]
    (repo / "stages/preprocess.py").write_text((repo / "stages/preprocess.py").read_text() + "\n# touched\n")
    assert repro(repo)[0] == ["preprocess"]
    assert "up to date" in run(repo, "dvc", "status").stdout


def test_invalid_params_fail_before_any_work(repo):
    set_params(repo, data={"dataset": "cifar10"})
    ran, result = repro(repo, check=False)
    assert result.returncode != 0 and ran == ["download"]
    assert "data.dataset: Input should be 'fashion_mnist', 'mnist', 'digits' or 'image_folder' (got 'cifar10')" in result.stderr
    assert not (repo / "data" / "raw").exists()


def test_bad_data_stops_the_pipeline_at_validate(repo, tmp_path):
    folder = tmp_path / "skewed"
    for name, count in (("cats", 60), ("dogs", 12)):
        (folder / name).mkdir(parents=True)
        for index in range(count):
            write_image(folder / name / f"{index}.png", "L", (28, 28), seed=index)
    set_params(repo, data={"dataset": "image_folder", "source": str(folder)})
    ran, result = repro(repo, check=False)
    assert result.returncode != 0 and ran == ["download", "validate"]
    assert "every class's share is 0.5..2.0 times the uniform share" in result.stderr and "(dogs=0.35" in result.stderr
    assert not (repo / "data" / "processed").exists()
    assert "validate" not in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs Debian's dataset-fashion-mnist (make test installs it)")
def test_default_dataset_offline(repo):
    set_params(repo, data={"max_train_images": 2000, "max_test_images": 500})
    assert repro(repo)[0] == ["download", "validate", "preprocess"]
    assert yaml.safe_load((repo / "data/raw/manifest.json").read_text())["source"] == DEBIAN_FASHION_MNIST
