import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.params import ParamsError
from imagepipe.core.sections import TrainRnnParams
from imagepipe.data.preprocessing import write_encoding
from imagepipe.data.shards import write_manifest, write_split
from imagepipe.families.rnn.evaluation import evaluate, weighted_accuracy
from imagepipe.families.rnn.model import RECURRENT_LAYER, row_rnn
from imagepipe.tracking.serving import PREDICTED_CLASS
from imagepipe.training.inputs import load_split
from stages import evaluate_family, train_family
from tests.helpers.stages import run_main

TINY = {
    "cell": "gru",
    "units": 8,
    "bidirectional": False,
    "dropout_rate": 0.1,
    "epochs": 2,
    "batch_size": 8,
    "learning_rate": 0.01,
}
ODD_NAMES = ["Apple Braeburn", "banana_ü", "cherry (red)"]
# The keys of metrics/cnn.json (stages/evaluate.py), so that `dvc metrics show` compares them.
CNN_KEYS = {"test_accuracy", "test_loss", "test_macro_f1", "num_test_images", "per_class"}


def tiny(**changes) -> TrainRnnParams:
    return TrainRnnParams.model_validate(TINY | changes)


def write_rgb_processed(directory: Path, class_names: list[str], size: int = 32, per_class: int = 8) -> Path:
    """A preprocess output of RGB images whose class is a bright band of rows in one colour."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    splits = {}
    for split, count in (("train", per_class), ("val", per_class // 2), ("test", per_class // 2)):
        labels = np.repeat(np.arange(len(class_names)), count)
        images = rng.integers(0, 60, (len(labels), size, size, 3))
        band = size // len(class_names)
        for index, label in enumerate(labels):
            images[index, label * band : (label + 1) * band, :, label % 3] += 190
        splits[split] = write_split(directory, split, iter([(images.astype(np.uint8), labels)]), (size, size, 3))
    write_manifest(directory, splits)
    write_encoding(directory, len(class_names))
    (directory / "classes.json").write_text(json.dumps(class_names))
    return directory


@pytest.mark.parametrize(("shape", "num_classes"), [((28, 28, 1), 10), ((32, 32, 3), 3)])
def test_the_model_maps_images_to_class_probabilities(shape, num_classes):
    model = row_rnn(shape, num_classes, tiny())
    probabilities = model.predict(np.random.default_rng(0).random((2, *shape), np.float32), verbose=0)
    assert model.output_shape == (None, num_classes) and probabilities.shape == (2, num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert model.get_layer("features").output.shape == (None, 8)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_recurrent_layer_reads_one_row_a_step(cell, bidirectional):
    model = row_rnn((32, 30, 3), 3, tiny(cell=cell, bidirectional=bidirectional))
    assert model.get_layer("row_sequence").output.shape == (None, 32, 30 * 3)  # height steps of a row each
    assert model.get_layer(RECURRENT_LAYER).input.shape == (None, 32, 8)
    assert model.get_layer(RECURRENT_LAYER).output.shape == (None, 16 if bidirectional else 8)


def test_a_shape_that_is_not_an_image_is_refused():
    with pytest.raises(ValueError, match=r"shaped \(height, width, channels\); got the input shape \(28, 28\)"):
        row_rnn((28, 28), 10, tiny())


def test_an_unknown_cell_is_refused_naming_the_key_and_the_cells(make_params):
    with pytest.raises(ParamsError, match=r"train_rnn\.cell: Input should be 'lstm' or 'gru' \(got 'rnn'\)"):
        make_params(train_rnn={"cell": "rnn"})


def test_the_statistic_is_the_accuracy_with_each_row_counted_as_often_as_drawn():
    items = np.array([1.0, 0.0, 1.0, 1.0])
    assert weighted_accuracy(items, np.ones(4)) == 0.75
    assert weighted_accuracy(items, np.array([0, 3, 1, 0])) == 0.25


def test_the_statistic_refuses_weights_that_are_not_one_per_image():
    with pytest.raises(ValueError, match=r"one weight per test image.*\(4,\).*\(3,\)"):
        weighted_accuracy(np.ones(4), np.ones(3))


def test_the_metrics_have_the_cnns_keys_and_the_items_are_its_right_answers(tmp_path, make_params):
    data = write_rgb_processed(tmp_path / "processed", ODD_NAMES)
    evaluation = evaluate(row_rnn((32, 32, 3), 3, tiny()), data, make_params())
    assert set(evaluation.metrics) == CNN_KEYS and set(evaluation.metrics["per_class"]) == set(ODD_NAMES)
    assert evaluation.items.shape == (12,) and set(np.unique(evaluation.items)) <= {0.0, 1.0}
    assert weighted_accuracy(evaluation.items, np.ones(12)) == evaluation.metrics["test_accuracy"]


@pytest.mark.slow
def test_stages_train_evaluate_and_serve_the_rnn_on_rgb_images(mlflow_store, tmp_path, monkeypatch, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_rnn": TINY}))
    write_rgb_processed(tmp_path / "processed", ODD_NAMES)
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    places = ["--model-dir", "models/rnn", "--plots", "plots/rnn", "--family", "rnn"]
    run_main(train_family, monkeypatch, "--data", "processed", *places)
    evaluate_arguments = ["--data", "processed", "--validation", "summary.json", "--metrics", "metrics/rnn.json"]
    run_main(evaluate_family, monkeypatch, *places, *evaluate_arguments)
    metrics = json.loads((tmp_path / "metrics/rnn.json").read_text())
    assert set(metrics) == CNN_KEYS | {"test_accuracy_ci"} and metrics["num_test_images"] == 12
    low, high = metrics["test_accuracy_ci"]
    assert 0 <= low <= metrics["test_accuracy"] <= high <= 1
    pictures = tmp_path / "plots/rnn/pictures"
    assert {path.name for path in pictures.iterdir()} == {"gt_vs_pr.png", "confusion_matrix.png"}
    name = f"{raw_params['data']['dataset']}-rnn"
    assert str(MlflowClient(mlflow_store).get_model_version_by_alias(name, "champion").version) == "1"
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert served.model_config["kind"] == "classifier" and served.model_config["input_shape"] == [32, 32, 3]
    table = served.predict(load_split(tmp_path / "processed", "test").images(np.arange(5)) * 255)
    assert table.columns.tolist() == [PREDICTED_CLASS, *ODD_NAMES] and len(table) == 5
    artifacts = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(tmp_path / "m")))
    with np.load(artifacts / "artifacts" / "drift_reference.npz") as reference:
        assert str(reference["feature_layer"]) == "features" and list(reference["class_names"]) == ODD_NAMES
