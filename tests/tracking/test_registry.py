"""The champion gate on a real MLflow sqlite store: one champion per task, promotion only beyond
noise on the same test set, the figures and the decision on the version."""

import json
from pathlib import Path

import keras
import mlflow
import numpy as np
from mlflow import MlflowClient

from imagepipe.tracking.publish import log_keras_model
from imagepipe.tracking.registry import CHAMPION, Candidate, Measured, Policy, promote_if_better
from imagepipe.tracking.significance import Gain, paired_accuracy
from imagepipe.tracking.store import configure_tracking
from imagepipe.tracking.tasks import Task

TASK = Task(("cat", "dog"), (4, 4, 1), "a" * 64)
POLICY = Policy(margin=0.0, confidence=0.95)


def register_version(tmp_path, name="cnn") -> str:
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    path = tmp_path / "model.keras"
    model.save(path)
    example = np.zeros((2, 4, 4, 1), np.float32)
    configure_tracking()
    with mlflow.start_run():
        return log_keras_model(path, name, example, model.predict(example, verbose=0), {"input_scale": 1 / 255})[
            "version"
        ]


def champion_version(name="cnn") -> str:
    return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)


def candidate(version: str, accuracy: float, task: Task = TASK, data_valid: bool = True, name: str = "cnn"):
    return Candidate(
        name, version, Measured(task, "test_accuracy", accuracy, (accuracy - 0.01, accuracy + 0.01)), data_valid
    )


def never_compared(champion_file: Path) -> Gain:
    raise AssertionError(f"the gate compared with {champion_file} although it had decided already")


def scores(seed: int, count: int = 2000, accuracy: float = 0.9) -> np.ndarray:
    return np.random.default_rng(seed).random(count) < accuracy


def improved(correct: np.ndarray, fixed: int, broken: int, seed: int) -> np.ndarray:
    """correct with `fixed` wrong answers made right and `broken` right ones made wrong."""
    rng, better = np.random.default_rng(seed), correct.copy()
    better[rng.choice(np.flatnonzero(~correct), fixed, replace=False)] = True
    better[rng.choice(np.flatnonzero(correct), broken, replace=False)] = False
    return better


def test_a_noise_level_gain_is_not_promoted_and_a_clear_one_is(mlflow_store, tmp_path):
    first, noisy, clear = (register_version(tmp_path) for _ in range(3))
    champion_correct = scores(seed=0)
    first_decision = promote_if_better(candidate(first, champion_correct.mean()), never_compared, POLICY)
    assert first_decision.promoted and first_decision.reason == "no previous champion"
    compared_with = []

    def compare_with(new_correct):
        def compare(champion_file: Path) -> Gain:
            compared_with.append(keras.saving.load_model(champion_file).input_shape)
            return paired_accuracy(new_correct, champion_correct, 0.95, 2000, seed=0)

        return compare

    # Twelve images fixed, ten broken: +0.1 point, higher accuracy, but noise on 2,000 images.
    noisy_correct = improved(champion_correct, fixed=12, broken=10, seed=1)
    assert noisy_correct.mean() > champion_correct.mean()
    refused = promote_if_better(candidate(noisy, noisy_correct.mean()), compare_with(noisy_correct), POLICY)
    assert not refused.promoted and refused.reason.endswith("within noise on this test set")
    assert champion_version() == first and compared_with == [(None, 4, 4, 1)]  # the champion's own file
    # Sixty fixed, ten broken: +2.5 points.
    clear_correct = improved(champion_correct, fixed=60, broken=10, seed=2)
    promoted = promote_if_better(candidate(clear, clear_correct.mean()), compare_with(clear_correct), POLICY)
    assert promoted.promoted and "lies above the margin 0" in promoted.reason
    assert champion_version() == clear
    tags = MlflowClient().get_model_version("cnn", noisy).tags
    low, high = json.loads(tags["gate_gain_ci"])
    assert low < 0 < high and float(tags["gate_p_value"]) > 0.05
    assert tags["champion_decision"].startswith("not promoted to champion: accuracy gain over champion v1")
    assert tags["test_fingerprint"] == TASK.test_fingerprint and json.loads(tags["test_accuracy_ci"])


def test_a_margin_refuses_a_real_but_small_gain(mlflow_store, tmp_path):
    first, second = register_version(tmp_path), register_version(tmp_path)
    promote_if_better(candidate(first, 0.9), never_compared, POLICY)
    clear = Gain(0.025, 0.015, 0.035, 1e-6)
    refused = promote_if_better(candidate(second, 0.925), lambda _: clear, Policy(margin=0.02, confidence=0.95))
    assert not refused.promoted and "does not lie above the margin 0.02" in refused.reason


def test_a_version_for_another_task_never_takes_the_champion(mlflow_store, tmp_path):
    first, other = register_version(tmp_path), register_version(tmp_path)
    promote_if_better(candidate(first, 0.5), never_compared, POLICY)
    pets = Task(("Golden Retriever (puppy)", "chat_noir_é", "Zebra #3"), (32, 32, 3), "b" * 64)
    refused = promote_if_better(candidate(other, 0.99, task=pets), never_compared, POLICY)
    assert not refused.promoted
    assert refused.reason == (
        "cnn holds another task (2 classes (cat, dog) at 4×4×1); this version is for 3 classes "
        "(Golden Retriever (puppy), chat_noir_é, Zebra #3) at 32×32×3: set registry.task "
        "(or registry.transfer_task) to register it apart"
    )
    assert champion_version() == first
    assert MlflowClient().get_registered_model("cnn").tags["task.input_shape"] == "4x4x1"


def test_the_same_task_on_another_test_set_is_compared_there(mlflow_store, tmp_path):
    first, second = register_version(tmp_path), register_version(tmp_path)
    promote_if_better(candidate(first, 0.9), never_compared, POLICY)
    # A bigger test set of the same task: the champion's recorded 0.9 is not the yardstick, a
    # paired rescore is; here the champion does better on it than the new version.
    bigger = Task(TASK.class_names, TASK.input_shape, "c" * 64)
    worse = Gain(-0.03, -0.04, -0.02, 1e-9)
    refused = promote_if_better(candidate(second, 0.95, task=bigger), lambda _: worse, POLICY)
    assert not refused.promoted and "within noise" in refused.reason and champion_version() == first


def test_invalid_data_is_never_promoted(mlflow_store, tmp_path):
    version = register_version(tmp_path)
    refused = promote_if_better(candidate(version, 0.99, data_valid=False), never_compared, POLICY)
    assert not refused.promoted and refused.reason == "its data did not pass validation"
    assert MlflowClient().get_registered_model("cnn").aliases == {}
