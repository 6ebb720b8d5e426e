"""Batch scoring with a real champion: a small CNN trained here on Fashion-MNIST, registered in a
real MLflow sqlite store with its drift reference; the flow runs against the real Prefect server.

Held-out test images score without drift; the same images inverted drift and fail the run
(`Drifted`); images of another shape fail validation (`Invalid`) and are not scored. The slow
test runs the `score-new-images` deployment on a process worker and checks that the drift
starts `nightly-retrain` through prefect.yaml's trigger, by itself.
"""

import csv
import gzip
import json
import shutil
import time
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import StateType
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.score import LAST_RUN, REPORT_KEY, score
from imagepipe.data.sources.idx import parse_idx
from imagepipe.models.cnn import course_cnn
from imagepipe.models.heads import feature_model
from imagepipe.tracking.publish import log_keras_model
from imagepipe.tracking.registry import CHAMPION
from imagepipe.tracking.serving import prediction_table
from imagepipe.tracking.store import configure_tracking
from tests.helpers.data import ROOT, write_image
from tests.helpers.prefect import worker

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MODEL = "fashion_mnist-cnn"  # the default: params.yaml's task is fashion_mnist
TRAIN_IMAGES, REFERENCE_IMAGES, NEW_IMAGES = 6000, 1000, 300

pytestmark = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason=f"{FASHION_MNIST} (Debian's fashion-mnist) absent")


def read_idx(name: str) -> np.ndarray:
    return parse_idx(gzip.decompress((FASHION_MNIST / name).read_bytes()), name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A course CNN trained for 2 epochs on 6000 train images (~80% accuracy), its drift reference
    (features of 1000 of them), and 300 held-out test images."""
    keras.utils.set_random_seed(0)
    directory = tmp_path_factory.mktemp("classifier")
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.choice(60000, TRAIN_IMAGES, replace=False))
    images = read_idx("train-images-idx3-ubyte.gz")[chosen][..., None]
    labels = read_idx("train-labels-idx1-ubyte.gz")[chosen]
    model = course_cnn((28, 28, 1), 10, 0.0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[:5000] / 255, labels[:5000], 128, 2, validation_data=(images[5000:] / 255, labels[5000:]))
    model.save(directory / "model.keras")
    features = feature_model(model, "features").predict(images[:REFERENCE_IMAGES] / 255, verbose=0)
    np.savez(
        directory / "drift_reference.npz",
        features=features.astype(np.float32),
        class_counts=np.bincount(labels, minlength=10).astype(np.int64),
        class_names=np.array(CLASS_NAMES, dtype=str),
        feature_layer=np.array("features"),
    )
    test = read_idx("t10k-images-idx3-ubyte.gz")[rng.choice(10000, NEW_IMAGES, replace=False)]
    return {"directory": directory, "test": test}


def register_champion(trained: dict) -> str:
    """Register the trained CNN as the served pyfunc with its drift reference; make it champion."""
    directory = trained["directory"]
    example = trained["test"][:4, ..., None].astype(np.float32)
    classifier = keras.saving.load_model(directory / "model.keras")
    configure_tracking()
    with mlflow.start_run(run_name="train_cnn"):
        version = log_keras_model(
            directory / "model.keras",
            MODEL,
            example,
            prediction_table(classifier.predict(example / 255, verbose=0), CLASS_NAMES),
            {"input_scale": 1 / 255, "class_names": CLASS_NAMES, "input_shape": [28, 28, 1]},
            {"drift_reference": directory / "drift_reference.npz"},
        )["version"]
    MlflowClient().set_registered_model_alias(MODEL, CHAMPION, version)
    return version


def write_folder(folder: Path, images: np.ndarray) -> Path:
    """Images as PNG files in two subfolders, with a stray Thumbs.db."""
    for index, image in enumerate(images):
        path = folder / f"batch {index % 2}" / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(path)
    (folder / "Thumbs.db").write_bytes(b"\0" * 32)
    return folder


@pytest.fixture
def workspace(mlflow_store, tmp_path, trained) -> Path:
    """The test's working directory, a workspace with params.yaml and dvc.yaml, and a champion."""
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    register_champion(trained)
    return tmp_path


def run_score(server, **parameters):
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        state = score(**parameters, return_state=True)
        # The run's logs go to the server in the background: send them while it is up.
        APILogWorker.drain_all(timeout=5)
    return state


def report_artifact(server, state) -> str:
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    assert artifact.key == REPORT_KEY and artifact.type == "markdown"
    return artifact.data


def scoring_run(version: str) -> mlflow.entities.Run:
    (run,) = mlflow.search_runs(
        experiment_names=["imagepipe"], filter_string="tags.stage = 'score'", output_format="list"
    )
    assert run.data.tags["registered_model"] == MODEL and run.data.tags["model_version"] == version
    return run


def test_held_out_images_score_without_drift_then_are_not_scored_again(prefect_server, workspace, trained):
    inbox = write_folder(workspace / "inbox", trained["test"])
    state = run_score(prefect_server, source=str(inbox), output="scores")
    report = report_artifact(prefect_server, state)
    assert state.is_completed() and state.name == "Completed", report
    result = state.result()
    with open(result["predictions"], newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["path", "predicted_class", *CLASS_NAMES]
    assert len(rows) == NEW_IMAGES and rows[0]["path"] == "batch 0/0000.png"
    assert {row["predicted_class"] for row in rows} <= set(CLASS_NAMES)
    assert abs(sum(float(rows[0][name]) for name in CLASS_NAMES) - 1) < 1e-4
    assert "**No drift**" in report and "files skipped (not images): 1" in report
    run = scoring_run("1")
    assert run.data.metrics["drift.drifted"] == 0 and run.data.metrics["images_scored"] == NEW_IMAGES
    assert run.data.metrics["drift.feature_p_value"] > 0.01
    logged = {item.path for item in MlflowClient().list_artifacts(run.info.run_id, "scoring")}
    assert logged == {"scoring/predictions.csv", "scoring/report.md"}
    # The next scheduled run finds the same files: nothing to do.
    again = run_score(prefect_server, source=str(inbox), output="scores")
    assert again.is_completed() and again.name == "Skipped" and "no new images" in again.message


def test_inverted_images_drift_and_fail_the_run(prefect_server, workspace, trained):
    inbox = write_folder(workspace / "inverted", 255 - trained["test"])
    state = run_score(prefect_server, source=inbox.as_uri(), model=MODEL, output="scores")
    report = report_artifact(prefect_server, state)
    assert state.is_failed() and state.name == "Drifted", state.message
    assert "**Drift** in the predicted classes and the features" in report and report in state.message
    run = scoring_run("1")
    assert run.data.metrics["drift.drifted"] == 1 and run.data.metrics["drift.feature_mmd2"] > 0.01
    (scored,) = [path for path in (workspace / "scores").iterdir() if path.is_dir()]
    assert (scored / "report.md").read_text() == report and (scored / "predictions.csv").is_file()
    assert json.loads((workspace / "scores" / LAST_RUN).read_text())["mlflow_run_id"] == run.info.run_id


def test_images_of_another_shape_are_refused_before_scoring(prefect_server, workspace, trained):
    inbox = write_folder(workspace / "inbox", trained["test"][:10])
    write_image(inbox / "photo.png", "RGB", (64, 48), seed=0)
    state = run_score(prefect_server, source=str(inbox), output="scores")
    assert state.is_failed() and state.name == "Invalid"
    assert "image channels is 1" in state.message and "photo.png=3" in state.message
    report = report_artifact(prefect_server, state)
    assert "image width is 28" in report and "stored at 28×28 with 1 channel(s)" in report
    assert "set `score.resize: true`" in report
    assert not list((workspace / "scores").rglob("predictions.csv"))
    assert mlflow.search_runs(experiment_names=["imagepipe"], filter_string="tags.stage = 'score'").empty


@pytest.mark.slow
def test_deployment_drift_starts_nightly_retrain_by_itself(prefect_server, workspace, trained, tmp_path):
    """`score-new-images` on a process worker; its Drifted state fires prefect.yaml's trigger on
    `nightly-retrain` (the event `prefect.flow-run.Drifted`), which creates a retrain flow run."""
    shutil.copytree(ROOT / "flows", workspace / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "prefect.yaml", workspace / "prefect.yaml")
    write_folder(workspace / "inbox", np.rot90(trained["test"], axes=(1, 2)))
    prefect_server.deploy(workspace, keep_triggers=True)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}), get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name("retrain-on-drift")
    assert automation.enabled and automation.trigger.expect == {"prefect.flow-run.Drifted"}
    before = {run.id for run in prefect_server.flow_runs("pipeline/nightly-retrain")}
    try:
        with worker(prefect_server, "cpu", workspace, {"MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}):
            # rescore: the test's run, not an earlier one of the same inbox, is the one that drifts.
            flow_run = prefect_server.run("score/score-new-images", {"rescore": True}, timeout=600)
        assert flow_run.state.name == "Drifted", prefect_server.logs(flow_run)
        assert flow_run.state.type == StateType.FAILED
        deadline, started = time.monotonic() + 60, []
        while not started and time.monotonic() < deadline:
            started = [r for r in prefect_server.flow_runs("pipeline/nightly-retrain") if r.id not in before]
            time.sleep(1)
        assert started, "the drift did not start nightly-retrain within 60 s"
        assert not started[0].auto_scheduled
    finally:
        # No GPU worker runs here; a later test's worker must not pick the retrain run up.
        leftover = [run.id for run in prefect_server.flow_runs("pipeline/nightly-retrain") if run.id not in before]
        with (
            temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}),
            get_client(sync_client=True) as client,
        ):
            for run_id in leftover:
                client.delete_flow_run(run_id)
        prefect_server.pause_automations()
    assert (workspace / "scores" / LAST_RUN).is_file()
