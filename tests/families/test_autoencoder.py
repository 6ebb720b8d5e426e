import json

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.errors import StageError
from imagepipe.core.sections import InputsParams
from imagepipe.families.anomaly.scores import anomaly_index, normal_images, scored_items, weighted_auroc
from imagepipe.families.autoencoder.model import autoencoder
from imagepipe.tracking.serving import ANOMALY_SCORE
from imagepipe.training.inputs import load_split
from stages import evaluate_family, train_family
from tests.helpers.data import write_processed
from tests.helpers.stages import run_main

TINY = {
    "latent_dim": 8,
    "noise_stddev": 0.2,
    "anomaly_class": None,
    "epochs": 2,
    "batch_size": 8,
    "learning_rate": 0.003,
}


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (30, 26, 3)])
def test_the_autoencoder_gives_back_an_image_of_its_input_shape(shape):
    model = autoencoder(shape, 4, 0.1)
    images = np.random.default_rng(0).random((2, *shape), np.float32)
    reconstructions = model.predict(images, verbose=0)
    assert model.output_shape == (None, *shape) and reconstructions.shape == (2, *shape)
    assert 0 <= reconstructions.min() and reconstructions.max() <= 1


def test_a_shape_that_is_not_an_image_is_refused():
    with pytest.raises(StageError, match=r"take images \(height, width, channels\), got the shape \(28, 28\)"):
        autoencoder((28, 28), 4, 0.1)


def test_the_noise_is_added_in_training_only():
    model = autoencoder((28, 28, 1), 4, 0.5)
    images = np.full((2, 28, 28, 1), 0.5, np.float32)
    noise = model.get_layer("noise")
    assert np.array_equal(noise(images, training=False), images)
    assert (np.asarray(noise(images, training=True)) - images).std() == pytest.approx(0.5, rel=0.1)
    assert np.array_equal(model(images, training=False), model(images, training=False))
    assert not np.allclose(model(images, training=True), model(images, training=False))


def test_auroc_is_one_for_a_perfect_ranking_and_zero_for_a_reversed_one():
    normal, anomalous = [0.1, 0.2, 0.3], [0.7, 0.8]
    items = scored_items(np.array(normal + anomalous), np.array([0, 0, 0, 1, 1]), anomaly=1)
    ones = np.ones(5)
    assert weighted_auroc(items, ones) == 1.0
    assert weighted_auroc(items * [-1, 1], ones) == 0.0


def test_weights_count_rows_as_often_as_a_resample_draws_them():
    # Anomaly 0.25 ranks below one normal image (0.3): 5 of 6 pairs are in order.
    items = np.array([[0.1, 0], [0.2, 0], [0.3, 0], [0.25, 1], [0.8, 1]])
    assert weighted_auroc(items, np.ones(5)) == pytest.approx(5 / 6)
    assert weighted_auroc(items, np.array([1, 1, 0, 1, 1])) == 1.0  # the normal 0.3 not drawn
    weights = np.array([1, 1, 3, 1, 1])
    repeated = np.repeat(items, weights, axis=0)
    assert weighted_auroc(items, weights) == pytest.approx(weighted_auroc(repeated, np.ones(len(repeated))))
    assert weighted_auroc(items, weights) == pytest.approx(7 / 10)


def test_a_resample_with_one_class_only_scores_chance():
    items = np.array([[0.1, 0], [0.2, 0], [0.9, 1]])
    assert weighted_auroc(items, np.array([2.0, 1.0, 0.0])) == 0.5
    assert weighted_auroc(items, np.array([0.0, 0.0, 3.0])) == 0.5


def test_the_anomaly_class_is_named_or_the_last():
    names = ["T-shirt/top", "Trouser", "Bag"]
    assert anomaly_index(names, None) == 2 and anomaly_index(names, "Trouser") == 1


def test_an_unknown_anomaly_class_is_refused_with_the_class_names():
    with pytest.raises(StageError, match=r"anomaly_class 'Sock' is not a class.*'T-shirt/top', 'Trouser', 'Bag'"):
        anomaly_index(["T-shirt/top", "Trouser", "Bag"], "Sock")


@pytest.mark.parametrize("cache_mb", [1024, 0])  # in memory; streamed from the shard files
def test_the_anomaly_class_is_left_out_of_the_training_images(tmp_path, cache_mb):
    split = load_split(write_processed(tmp_path / "processed", per_class=20), "train")
    labels = split.labels()
    inputs = InputsParams(cache_mb=cache_mb, shuffle_buffer_mb=1)
    batches = list(normal_images(split, 2, 4, seed=0, inputs=inputs).as_numpy_iterator())
    assert all(0 < len(batch) <= 4 for batch in batches)
    np.testing.assert_array_equal(np.concatenate(batches), split.images(np.flatnonzero(labels != 2)))
    shuffled = np.concatenate(list(normal_images(split, 2, 4, seed=0, shuffle=True, inputs=inputs)))
    assert len(shuffled) == np.sum(labels != 2)


def test_a_split_of_the_anomaly_class_only_is_refused(tmp_path):
    from imagepipe.data.preprocessing import write_encoding
    from imagepipe.data.shards import write_manifest, write_split

    images, labels = np.zeros((4, 28, 28, 1), np.uint8), np.ones(4, np.int64)
    write_manifest(tmp_path, {"train": write_split(tmp_path, "train", iter([(images, labels)]), (28, 28, 1))})
    write_encoding(tmp_path, 2)
    with pytest.raises(StageError, match="the train split holds no image outside the anomaly class"):
        normal_images(load_split(tmp_path, "train"), 1, 4, seed=0)


@pytest.mark.slow
def test_stages_train_evaluate_and_serve_the_autoencoder(mlflow_store, tmp_path, monkeypatch, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_autoencoder": TINY}))
    write_processed(tmp_path / "processed", per_class=24)
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    places = ["--model-dir", "models/autoencoder", "--plots", "plots/autoencoder", "--family", "autoencoder"]
    run_main(train_family, monkeypatch, "--data", "processed", *places)
    evaluate = ["--data", "processed", "--validation", "summary.json", "--metrics", "metrics/autoencoder.json"]
    run_main(evaluate_family, monkeypatch, *places, *evaluate)
    metrics = json.loads((tmp_path / "metrics/autoencoder.json").read_text())
    assert metrics["anomaly_class"] == "class 2" and metrics["num_test_anomalies"] == 12
    low, high = metrics["test_anomaly_auroc_ci"]
    assert 0 <= low <= metrics["test_anomaly_auroc"] <= high <= 1 and metrics["test_reconstruction_mse"] > 0
    pictures = tmp_path / "plots/autoencoder/pictures"
    assert {path.name for path in pictures.iterdir()} == {"reconstructions.png", "anomaly_scores.png"}
    name = f"{raw_params['data']['dataset']}-autoencoder"
    assert str(MlflowClient(mlflow_store).get_model_version_by_alias(name, "champion").version) == "1"
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    config = served.model_config
    assert config["kind"] == "reconstructor" and config["anomaly_class"] == "class 2"
    test = load_split(tmp_path / "processed", "test")
    table = served.predict(test.images(np.arange(6)) * 255)
    assert table.columns.tolist() == [ANOMALY_SCORE, "is_anomaly"] and len(table) == 6
    assert (table["is_anomaly"] == (table[ANOMALY_SCORE] > config["anomaly_threshold"])).all()
