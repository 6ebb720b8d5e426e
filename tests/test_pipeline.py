"""End to end: the real dvc.yaml in a temporary git + DVC repo, on small real data, on CPU."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.data.sources.datasets import DEBIAN_FASHION_MNIST
from tests.helpers.data import write_image
from tests.helpers.dvc import up_to_date
from tests.helpers.servers import served_model
from tests.helpers.vendor import copy_datadocs_vendor

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path / "repo")


def make_repo(repo: Path) -> Path:
    """A git + DVC repo holding the project's stages, its library (src/: the stages' deps in
    dvc.yaml), dvc.yaml, params.yaml and the Data Docs' browser assets."""
    for folder in ("stages", "src"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    copy_datadocs_vendor(repo)
    run(repo, "git", "init", "-q")
    run(repo, "dvc", "init", "-q")
    run(repo, "dvc", "config", "core.analytics", "false")
    return repo


def tool_env() -> dict[str, str]:
    """The environment with this virtual environment's tools (dvc, python, mlflow) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run(repo: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=repo, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def repro(repo: Path, *targets: str, check: bool = True) -> tuple[list[str], subprocess.CompletedProcess]:
    """The stages `dvc repro` ran, but for `scan`, which runs every time by design (it is how DVC
    sees a change inside a folder outside the repository)."""
    result = run(repo, "dvc", "repro", *targets, check=check)
    ran = re.findall(r"Running stage '([^']+)'", result.stdout)
    assert "scan" not in ran or ran[0] == "scan", ran  # not there under --single-item of another stage
    return [stage for stage in ran if stage != "scan"], result


def set_params(repo: Path, **sections) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


QUICK = {
    "data": {"dataset": "digits"},
    "train_cnn": {"epochs": 1, "warmup_epochs": 0},
    "train_gan": {"epochs": 1, "max_images": 256, "fid_samples": 100},
    "train_transfer": {"epochs": 1, "fine_tune_epochs": 1},
    # Enough items for every class's share to pass validate's check on digits.
    "compose_scenes": {"train_scenes": 300, "val_scenes": 100, "test_scenes": 100},
    "train_rnn": {"epochs": 1, "units": 16},
    # Digits have no Bag: the held-out class is the last one.
    "train_autoencoder": {"epochs": 1, "anomaly_class": None},
    "train_vae": {"epochs": 1, "anomaly_class": None},
    "train_unet": {"epochs": 1, "depth": 2, "filters": 8},
    "train_detector": {"epochs": 1, "filters": 8},
}
# The pipeline without the other model families, for tests about something else.
NO_FAMILIES = {"families": {"images": [], "scenes": []}}


def all_stages(repo: Path) -> set[str]:
    result = run(repo, "dvc", "stage", "list", "--name-only")
    return set(result.stdout.split())


def test_repro_runs_once_then_only_what_changed(repo):
    set_params(repo, **QUICK)
    ran, _ = repro(repo)
    assert set(ran) == all_stages(repo) - {"scan"} and ran[:3] == ["download", "validate", "preprocess"]
    train = json.loads((repo / "data/processed/shards.json").read_text())["splits"]["train"]
    assert train["shape"] == [28, 28, 1] and train["dtype"] == "uint8"
    assert (repo / "data/validation/docs/index.html").exists()
    assert (repo / "models/cnn/best.keras").exists() and (repo / "plots/cnn/gt_vs_pr.png").exists()
    assert "test_accuracy" in run(repo, "dvc", "metrics", "show").stdout

    ran, result = repro(repo)
    assert ran == [] and "Stage 'download' didn't change, skipping" in result.stdout

    # prepare_transfer validates its task with the validate params too.
    set_params(repo, validate={"max_kl_divergence": 0.1})
    assert sorted(repro(repo)[0]) == ["prepare_transfer", "validate"]
    set_params(repo, visualize={"rows": 2})
    assert sorted(repro(repo)[0]) == ["visualize@cnn", "visualize@transfer"]
    set_params(repo, evaluate={"batch_size": 64})
    family_evaluations = [
        *(f"evaluate_image_model@{family}" for family in ("autoencoder", "rnn", "vae")),
        *(f"evaluate_scene_model@{family}" for family in ("detector", "unet")),
    ]
    assert sorted(repro(repo)[0]) == ["evaluate@cnn", "evaluate@transfer", "evaluate_gan", *family_evaluations]
    # Same outputs from changed code: DVC stops there and reruns nothing downstream. A library
    # module reruns the stages that import it (validate and prepare_transfer both check data)...
    summary = repo / "src/imagepipe/validation/summary.py"
    summary.write_text(summary.read_text() + "\n# touched\n")
    assert sorted(repro(repo)[0]) == ["prepare_transfer", "validate"]
    # ...and a stage's own file reruns that stage alone: no stage imports another.
    (repo / "stages/validate.py").write_text((repo / "stages/validate.py").read_text() + "\n# touched\n")
    assert repro(repo)[0] == ["validate"]
    assert up_to_date(run(repo, "dvc", "status").stdout)


def assert_champion_served_on_raw_pixels(repo: Path, name: str) -> None:
    """The champion of the registered classifier name of a completed pipeline, loaded with mlflow.pyfunc and served by
    `mlflow models serve`, gives the same class names and probabilities for raw 0-255 pixels.
    (tests/faults/test_kill.py runs it on a pipeline recovered from kills in every stage.)"""
    raw = np.load(repo / "data/raw/test-00000.npy")[:3].astype(np.float32)
    env = {**tool_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"}
    probe = run(
        repo,
        sys.executable,
        "-c",
        (
            "import mlflow, numpy as np, json; mlflow.set_tracking_uri('sqlite:///mlflow.db');"
            f"model = mlflow.pyfunc.load_model('models:/{name}@champion');"
            "table = model.predict(np.load('data/raw/test-00000.npy')[:3].astype('float32'));"
            "print(table.to_json(orient='split'))"
        ),
    )
    table = json.loads(probe.stdout.strip().splitlines()[-1])
    class_names = table["columns"][1:]
    assert table["columns"][0] == "predicted_class" and len(class_names) == 10
    probabilities = np.array([row[1:] for row in table["data"]])
    assert probabilities.shape == (3, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert [row[0] for row in table["data"]] == [class_names[index] for index in probabilities.argmax(axis=1)]
    with served_model(f"models:/{name}@champion", repo, env) as url:
        request = urllib.request.Request(
            f"{url}/invocations", json.dumps({"inputs": raw.tolist()}).encode(), {"Content-Type": "application/json"}
        )
        served_predictions = json.load(urllib.request.urlopen(request, timeout=60))["predictions"]
    assert [row["predicted_class"] for row in served_predictions] == [row[0] for row in table["data"]]
    np.testing.assert_allclose(
        [[row[name] for name in class_names] for row in served_predictions], probabilities, atol=1e-5
    )


def test_invalid_params_fail_before_any_work(repo):
    set_params(repo, data={"dataset": "cifar10"})
    ran, result = repro(repo, check=False)
    assert result.returncode != 0 and "scan" in result.stdout and ran == []
    assert (
        "data.dataset: Input should be 'fashion_mnist', 'mnist', 'digits' or 'image_folder' (got 'cifar10')"
        in result.stderr
    )
    assert not (repo / "data" / "raw").exists()


def test_bad_data_stops_the_pipeline_at_validate(repo, skewed_image_folder):
    set_params(repo, data={"dataset": "image_folder", "source": str(skewed_image_folder)})
    ran, result = repro(repo, check=False)
    assert result.returncode != 0 and ran == ["download", "validate"]
    assert "every class's share is 0.5..2.0 times the uniform share" in result.stderr and "(dogs=0.35" in result.stderr
    assert not (repo / "data" / "processed").exists()
    assert "validate" not in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


@pytest.mark.skipif(
    not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs Debian's dataset-fashion-mnist (make test installs it)"
)
def test_default_dataset_offline(repo):
    set_params(repo, data={"max_train_images": 2000, "max_test_images": 500})
    assert repro(repo, "preprocess")[0] == ["download", "validate", "preprocess"]
    assert yaml.safe_load((repo / "data/raw/manifest.json").read_text())["source"] == DEBIAN_FASHION_MNIST


ODD_CLASSES = ["Ümlaut & Co", "100% cotton", "日本 (jp)", "a.b,c;d"]


def write_user_folder(root: Path, per_class: int) -> Path:
    """An image folder as users bring one: RGB JPEGs of another size, odd class names, strays."""
    for label, name in enumerate(ODD_CLASSES):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            write_image(root / name / f"photo {index}.jpg", "RGB", (40, 36), seed=label * 1000 + index)
        (root / name / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    (root / ODD_CLASSES[0] / "README.txt").write_text("photos from the field")
    return root


def decoded(result: subprocess.CompletedProcess) -> tuple[int, int]:
    """(images decoded, images from the decode cache) in download's log, over both splits."""
    counts = re.findall(r"image file\(s\): (\d+) decoded, (\d+) from the decode cache", result.stderr)
    return sum(int(new) for new, _ in counts), sum(int(cached) for _, cached in counts)


def champions(repo: Path) -> dict[str, str]:
    """Every registered model of the repo's MLflow store and the version its champion alias names."""
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    return {model.name: str(model.aliases.get("champion")) for model in client.search_registered_models()}


def test_two_tasks_in_one_store_keep_their_own_champions(repo, tmp_path, monkeypatch):
    """A user's way through one workspace and one MLflow store: the default pipeline (on digits),
    then their own folder (odd class names, strays, RGB at 32×32×3), then the first task again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the decode cache, for this test alone
    set_params(repo, **QUICK)
    repro(repo)
    digits = champions(repo)
    families = ("rnn", "autoencoder", "vae", "unet", "detector")
    assert digits == {f"digits-{family}": "1" for family in ("cnn", "gan", "transfer", *families)}
    assert_champion_served_on_raw_pixels(repo, "digits-cnn")

    folder = write_user_folder(tmp_path / "photos", per_class=60)
    set_params(
        repo, data={"dataset": "image_folder", "source": str(folder)}, image={"height": 32, "width": 32, "channels": 3}
    )
    set_params(repo, train_gan={"fid_samples": 16})  # the folder's validation split has 20 images
    ran, result = repro(repo)
    assert {"evaluate@cnn", "evaluate_gan", "evaluate@transfer", "visualize@cnn"} <= set(ran)
    # The families too: the folder's scenes and images are another task for each of them.
    assert champions(repo) == digits | {f"photos-{family}": "1" for family in ("cnn", "gan", *families)}
    assert_users_folder_went_through(repo, result)
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    # The transfer target is digits again, now at 32×32×3: another task, said plainly.
    refused = client.get_model_version("digits-transfer", "2").tags["champion_decision"]
    assert refused.startswith("not promoted to champion: digits-transfer holds another task (10 classes")
    assert "at 28×28×1); this version is for 10 classes (0, 1, 2, 3, …) at 32×32×3" in refused

    # Nothing changed in the folder: download does not run again.
    assert repro(repo, "download")[0] == []
    # Three new photos: download reruns and decodes those three alone.
    for index in range(3):
        write_image(folder / ODD_CLASSES[1] / f"new {index}.png", "RGB", (40, 36), seed=9000 + index)
    ran, result = repro(repo, "download")
    assert ran == ["download"] and decoded(result) == (3, 240)

    # Back to digits with another learning rate: the new version meets digits' champion alone.
    set_params(repo, data={"dataset": "digits", "source": None}, image={"height": 28, "width": 28, "channels": 1})
    set_params(repo, train_cnn={"learning_rate": 0.002})
    repro(repo, "evaluate@cnn")
    decision = client.get_model_version("digits-cnn", "2").tags["champion_decision"]
    assert "accuracy gain over champion v1 on the same test set" in decision, decision
    assert champions(repo)["photos-cnn"] == "1"


def assert_users_folder_went_through(repo: Path, result: subprocess.CompletedProcess) -> None:
    assert decoded(result) == (240, 0)
    manifest = json.loads((repo / "data/raw/manifest.json").read_text())
    assert len(manifest["skipped_files"]) == 5 and manifest["num_train"] + manifest["num_test"] == 240
    assert json.loads((repo / "data/processed/classes.json").read_text()) == sorted(ODD_CLASSES)
    metrics = json.loads((repo / "metrics/cnn.json").read_text())
    assert set(metrics["per_class"]) == set(ODD_CLASSES)
    with (repo / "plots/cnn/predictions.csv").open() as handle:
        assert {row["actual"] for row in csv.DictReader(handle)} == set(ODD_CLASSES)
    run_id = json.loads((repo / "models/cnn/mlflow.json").read_text())["run_id"]
    logged = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}").get_run(run_id).data.metrics
    assert {key for key in logged if key.startswith("test_f1.")} == {
        "test_f1._mlaut _ Co",
        "test_f1.100_ cotton",
        "test_f1.__ _jp_",
        "test_f1.a.b_c_d",
    }
