import copy
import csv
import json
import re
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import yaml
from keras import layers
from keras.src.backend import config as keras_config
from keras.src.utils import file_utils
from mlflow import MlflowClient

from imagepipe.core.params import parse_params
from imagepipe.core.sections import TrainTransferParams
from imagepipe.data.transfer_task import (
    TooFewImages,
    few_labels,
)
from imagepipe.models.backbones import (
    APPLICATIONS,
    BackboneError,
    adapt_inputs,
    build_backbone,
)
from imagepipe.models.transfer import classifier, compile_with, head_of
from imagepipe.training import transfer as transfer_training
from imagepipe.training.inputs import Split, load_split, predict
from imagepipe.training.state import TrainingState
from imagepipe.training.transfer import compare
from imagepipe.validation.summary import ValidationFailed
from stages import train_transfer
from stages.prepare_transfer import prepare_task
from tests.helpers.data import ROOT, balanced_labels
from tests.helpers.models import assert_class_probabilities

# The smallest input each keras.applications backbone accepts keeps these tests fast.
SMALLEST = {name: application.min_size for name, application in APPLICATIONS.items()}
PREPROCESS_INPUT = {
    "inception_v3": keras.applications.inception_v3.preprocess_input,
    "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
    "efficientnet_b0": keras.applications.efficientnet.preprocess_input,
    "resnet50": keras.applications.resnet50.preprocess_input,
}


def transfer_params(**changes) -> TrainTransferParams:
    values = {
        "backbone": "pipeline_cnn",
        "weights": "none",
        "input_size": 32,
        "cut_layer": None,
        "seeds": 2,
        "epochs": 1,
        "fine_tune_epochs": 1,
        "fine_tune_layers": 2,
        "batch_size": 16,
        "learning_rate": 0.003,
        "fine_tune_learning_rate": 0.0003,
        "dropout_rate": 0.2,
        "dense_units": 8,
    }
    return TrainTransferParams.model_validate(values | changes)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_input_adaptation_is_the_backbones_own_preprocessing_and_loads_safely(name, channels, tmp_path):
    pixels = keras.Input((28, 28, channels))
    model = keras.Model(pixels, adapt_inputs(pixels, name, 40))
    images = np.random.default_rng(0).random((2, 28, 28, channels)).astype(np.float32)
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(images, (40, 40)))
    expected = PREPROCESS_INPUT[name](np.repeat(resized, 3 // channels, axis=-1) * 255)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-3)
    model.save(tmp_path / "adapt.keras")
    loaded = keras.saving.load_model(tmp_path / "adapt.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-3)


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_each_application_backbone_classifies_grayscale_pipeline_images(name):
    backbone = build_backbone(name, "none", SMALLEST[name], backbone_model=None)
    model = classifier(backbone, (28, 28, 1), 10, transfer_params(backbone=name), frozen=True)
    images = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
    assert_class_probabilities(model.predict(images, verbose=0), 3, 10)
    assert backbone.base.input_shape == (None, SMALLEST[name], SMALLEST[name], 3)


def accuracy_on(model_path: Path, split: Split) -> float:
    """A saved classifier's accuracy on a split, once its outputs are seen to be probabilities.
    Batches of 256, as the stage scores the test split: near-chance models have near-ties, which
    a different batching could tip."""
    predictions = predict(keras.saving.load_model(model_path, safe_mode=True), split, batch_size=256)
    assert_class_probabilities(predictions, split.count, split.num_classes)
    return float((predictions.argmax(axis=1) == split.labels()).mean())


def mobilenet_weights() -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))


def assert_same_weights(model: keras.Model, reference: keras.Model) -> None:
    assert len(model.weights) == len(reference.weights)
    for ours, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_weights_file_is_loaded_into_the_backbone(tmp_path):
    reference = mobilenet_weights()
    reference.save_weights(tmp_path / "mobilenet.weights.h5")
    backbone = build_backbone("mobilenet_v2", str(tmp_path / "mobilenet.weights.h5"), 32, backbone_model=None)
    assert_same_weights(backbone.base, reference)


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
def test_imagenet_weights_come_from_the_keras_cache_without_network(tmp_path, monkeypatch):
    # Keras reads KERAS_HOME once, at import, so the already-imported value is patched too.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    # No internet here: any download attempt fails the test instead of hanging on it.
    monkeypatch.setattr(file_utils, "urlretrieve", lambda *args, **kwargs: pytest.fail(f"tried to download {args[0]}"))
    reference = mobilenet_weights()
    (tmp_path / "models").mkdir()
    # The name keras.applications.MobileNetV2 asks get_file for (alpha 1.0, no top); inputs
    # outside 96..224 use the 224 file, whose convolution weights fit any input size.
    reference.save(tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    backbone = build_backbone("mobilenet_v2", "imagenet", 32, backbone_model=None)
    assert_same_weights(backbone.base, reference)


@pytest.mark.parametrize(
    "name, weights, input_size, message",
    [
        (
            "mobilenet_v2",
            "missing/file.weights.h5",
            32,
            "no weights file at missing/file.weights.h5; allowed: imagenet, none",
        ),
        ("inception_v3", "none", 32, "input_size is 32; inception_v3 needs at least 75"),
        ("pipeline_cnn", "imagenet", 32, "set weights: none"),
        ("pipeline_cnn", "none", 32, "run `dvc repro train_cnn` first"),
    ],
)
def test_backbone_errors_say_what_to_change(name, weights, input_size, message, tmp_path):
    with pytest.raises(BackboneError, match=re.escape(message)):
        build_backbone(name, weights, input_size, backbone_model=tmp_path / "absent.keras")


def test_few_labels_are_balanced_disjoint_and_seeded():
    labels = np.r_[balanced_labels(3, 10), [0, 0, 1]]
    train, validation = few_labels(labels, 4, seed=0)
    assert np.bincount(labels[train]).tolist() == [4, 4, 4] and np.bincount(labels[validation]).tolist() == [4, 4, 4]
    assert not set(train) & set(validation)
    assert np.array_equal(train, few_labels(labels, 4, seed=0)[0]) and not np.array_equal(
        train, few_labels(labels, 4, seed=1)[0]
    )
    with pytest.raises(TooFewImages, match="class 1 has 11 train images; .*labels_per_class=6 needs 12 .*at most 5"):
        few_labels(labels, 6, seed=0)


@pytest.fixture(scope="module")
def transfer_data(tmp_path_factory):
    """Digits at the pipeline's 28×28×1, three labels per class, as prepare_transfer writes them."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    parsed = parse_params(params | {"prepare_transfer": {**params["prepare_transfer"], "labels_per_class": 3}})
    directory = tmp_path_factory.mktemp("data") / "transfer"
    cache = tmp_path_factory.mktemp("cache")
    prepare_task(parsed.prepare_transfer, parsed.image, parsed.validation, 0, cache, directory)
    return directory


def test_transfer_task_has_the_processed_layout(transfer_data):
    for name, count in (("train", 30), ("val", 30)):
        split = load_split(transfer_data, name)
        images = split.images(np.arange(split.count))
        assert images.shape == (count, 28, 28, 1) and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1
        assert split.one_hot_labels().sum(axis=0).tolist() == [3] * 10
    summary = json.loads((transfer_data / "summary.json").read_text())
    assert summary["success"] and summary["num_classes"] == 10
    assert json.loads((transfer_data / "classes.json").read_text()) == [str(digit) for digit in range(10)]


def test_transfer_task_that_breaks_an_expectation_is_refused(make_params, tmp_path):
    params = make_params(prepare_transfer={"labels_per_class": 3}, validate={"max_kl_divergence": 1e-9})
    with pytest.raises(
        ValidationFailed,
        match=r"(?s)the transfer task \(digits\) failed validation .*test_vs_train: .*KL divergence 1e-09",
    ):
        prepare_task(params.prepare_transfer, params.image, params.validation, 0, tmp_path, tmp_path / "transfer")
    assert not (tmp_path / "transfer").exists() and not list(tmp_path.glob(".transfer.partial-*"))


def tiny_cnn(path):
    """A stand-in for models/cnn/best.keras: pixels in [0, 1], a `features` layer, a softmax."""
    keras.utils.set_random_seed(0)
    pixels = keras.Input((28, 28, 1), name="pixels")
    x = layers.MaxPooling2D(4)(layers.Conv2D(4, 3, activation="relu")(pixels))
    x = layers.Dense(16, activation="relu", name="features")(layers.Flatten(name="flatten")(x))
    keras.Model(pixels, layers.Dense(10, activation="softmax", name="probabilities")(x)).save(path)
    return path


def test_scratch_copy_is_newly_initialised_and_all_trainable(tmp_path):
    backbone = build_backbone("pipeline_cnn", "none", 32, tiny_cnn(tmp_path / "cnn.keras"))
    backbone.base.trainable = False
    backbone.unfreeze_top(1)
    fresh = backbone.fresh().base
    assert len(backbone.base.trainable_weights) == 2 and len(fresh.trainable_weights) == 4
    assert not np.array_equal(
        fresh.get_layer("features").get_weights()[0], backbone.base.get_layer("features").get_weights()[0]
    )


def test_pipeline_cnn_refuses_images_of_another_size(tmp_path):
    backbone = build_backbone("pipeline_cnn", "none", 32, tiny_cnn(tmp_path / "cnn.keras"))
    with pytest.raises(
        BackboneError, match=r"the task's images are \(32, 32, 1\) but pipeline_cnn takes \(28, 28, 1\)"
    ):
        classifier(backbone, (32, 32, 1), 10, transfer_params(), frozen=True)


class StopAfter(keras.callbacks.Callback):
    """Simulates a crash at the end of the given epoch, after the backup was written."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.seen = epoch, []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_pipeline_cnn_transfer_resumes_mid_fine_tuning_and_compares_with_scratch_over_seeds(transfer_data, tmp_path):
    params = transfer_params(epochs=1, fine_tune_epochs=2)
    model_path = tiny_cnn(tmp_path / "cnn.keras")

    def states(seed):
        directory = tmp_path / "state" / f"seed-{seed}"
        return {
            "transfer": TrainingState(directory, "val_accuracy", "max", {}),
            "scratch": TrainingState(directory / "scratch", "val_accuracy", "max", {}),
        }

    def backbone():
        return build_backbone("pipeline_cnn", "none", 32, model_path)

    with pytest.raises(RuntimeError, match="simulated crash"):
        compare(backbone, transfer_data, params, [0, 1], states, {"transfer": [StopAfter(1)], "scratch": []})
    transfer, scratch = StopAfter(-1), StopAfter(-1)
    comparison = compare(
        backbone, transfer_data, params, [0, 1], states, {"transfer": [transfer], "scratch": [scratch]}
    )
    # The callbacks see the first seed only, which resumes where it crashed.
    assert transfer.seen == [2] and scratch.seen == [0, 1, 2]
    assert comparison["seeds"] == 2 and set(comparison["per_seed"]) == {"0", "1"}
    assert all(0 <= comparison[f"{model}_test_accuracy_mean"] <= 1 for model in ("transfer", "scratch"))
    with (tmp_path / "state" / "seed-0" / "history.csv").open() as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2"]
    # Each seed's kept checkpoint is the model whose test accuracy was recorded.
    test = load_split(transfer_data, "test")
    for seed in (0, 1):
        accuracy = accuracy_on(tmp_path / "state" / f"seed-{seed}" / "best.keras", test)
        assert accuracy == pytest.approx(comparison["per_seed"][str(seed)]["transfer_test_accuracy"])


def test_stage_publishes_model_comparison_and_registers_it(
    transfer_data, tmp_path, mlflow_store, raw_params, monkeypatch
):
    raw = copy.deepcopy(raw_params)
    raw["train_transfer"] |= {"epochs": 1, "fine_tune_epochs": 1, "batch_size": 16, "dense_units": 8, "seeds": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    tiny_cnn(tmp_path / "cnn.keras")
    arguments = [
        "--data",
        str(transfer_data),
        "--backbone-model",
        "cnn.keras",
        "--model-dir",
        "models/transfer",
        "--plots",
        "plots/transfer",
    ]
    monkeypatch.setattr(sys, "argv", ["train_transfer", *arguments])
    train_transfer.main()
    comparison = json.loads((tmp_path / "models/transfer/comparison.json").read_text())
    reference = json.loads((tmp_path / "models/transfer/mlflow.json").read_text())
    assert reference["registered_model"] == "digits-transfer" and reference["class_names"][0] == "0"
    # The published model is the first seed's transfer model, the one whose accuracy is recorded.
    published = accuracy_on(tmp_path / "models/transfer/best.keras", load_split(transfer_data, "test"))
    assert published == pytest.approx(comparison["per_seed"][str(raw["seed"])]["transfer_test_accuracy"])
    assert (tmp_path / "plots/transfer/history.csv").exists() and not (tmp_path / ".state/transfer").exists()
    run = mlflow.get_run(reference["run_id"])
    assert comparison["seeds"] == 2 and set(comparison["per_seed"]) == {"42", "43"}
    for key in ("transfer_test_accuracy", "scratch_test_accuracy", "transfer_gain"):
        for statistic in ("mean", "sd"):
            assert run.data.metrics[f"{key}_{statistic}"] == pytest.approx(comparison[f"{key}_{statistic}"])
    history = MlflowClient().get_metric_history(reference["run_id"], "seed_transfer_test_accuracy")
    assert {metric.step: metric.value for metric in history} == pytest.approx(
        {int(seed): values["transfer_test_accuracy"] for seed, values in comparison["per_seed"].items()}
    )
    assert "scratch_val_accuracy" in run.data.metrics
    assert run.data.tags["backbone"] == "pipeline_cnn" and run.data.params["train_transfer.fine_tune_layers"] == str(
        raw["train_transfer"]["fine_tune_layers"]
    )


def test_head_trained_on_cached_features_is_the_classifiers_own_head(transfer_data, tmp_path):
    backbone = build_backbone("pipeline_cnn", "none", 32, tiny_cnn(tmp_path / "cnn.keras"))
    data = transfer_training.load_task(transfer_data, 8, 0)
    model = classifier(backbone, data["input_shape"], data["num_classes"], transfer_params(), frozen=True)
    backbone.base.trainable = False
    head = head_of(model, backbone)
    compile_with(head, 0.01)
    base_before = [weights.copy() for weights in backbone.base.get_weights()]
    head.fit(
        transfer_training.frozen_features(backbone, data, tmp_path / "features", 8, 0)["train"], epochs=2, verbose=0
    )

    val = data["splits"]["val"]
    images = val.images(np.arange(val.count))
    features = backbone.base.predict(images, verbose=0)
    # The classifier now predicts with the head's new weights, on the same base as before.
    np.testing.assert_allclose(
        model.predict(images, verbose=0), head.predict(features, verbose=0), rtol=1e-5, atol=1e-6
    )
    base_after = backbone.base.get_weights()
    assert all(np.array_equal(before, after) for before, after in zip(base_before, base_after, strict=True))
    cached = np.concatenate(
        [batch for batch, _ in transfer_training.frozen_features(backbone, data, tmp_path / "features", 8, 0)["val"]]
    )
    np.testing.assert_allclose(cached, features, rtol=1e-5, atol=1e-6)


def test_best_checkpoint_of_the_head_phase_is_the_whole_classifier(transfer_data, tmp_path):
    model_path = tiny_cnn(tmp_path / "cnn.keras")
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", {})
    data = transfer_training.load_task(transfer_data, 8, 0)
    transfer_training.train_transfer(
        build_backbone("pipeline_cnn", "none", 32, model_path), data, transfer_params(fine_tune_epochs=0), 0, state, []
    )
    saved = keras.saving.load_model(state.best_path, safe_mode=True)
    assert saved.input_shape == (None, *data["input_shape"]) and saved.output_shape == (None, data["num_classes"])
