import csv
import json
from functools import partial

import keras
import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.errors import StageError
from imagepipe.core.sections import TrainGanParams
from imagepipe.models import gan_quality
from imagepipe.models.gan import DCGAN, MinibatchStddev, generator
from imagepipe.models.gan_quality import feature_extractor, frechet_distance, precision_recall
from imagepipe.training.gan import train_gan
from imagepipe.training.state import TrainingState
from stages import evaluate_gan
from stages import train_gan as train_gan_stage
from tests.helpers.data import write_processed
from tests.helpers.stages import run_main

TINY = {
    "latent_dim": 8,
    "epochs": 1,
    "batch_size": 16,
    "max_images": 64,
    "learning_rate": 0.0002,
    "discriminator_learning_rate": 0.0002,
    "beta_1": 0.5,
    "label_smoothing": 0.0,
    "minibatch_stddev": False,
    "fid_samples": 16,
}


def tiny_classifier(image_shape=(28, 28, 1)) -> keras.Model:
    """A small untrained classifier with the `features` layer FID reads."""
    pixels = keras.Input(image_shape)
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, strides=2)(pixels))
    features = keras.layers.Dense(8, activation="relu", name="features")(x)
    return keras.Model(pixels, keras.layers.Dense(3, activation="softmax")(features))


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3)])
def test_generator_makes_images_of_the_data_shape_in_unit_range(image_shape):
    model = generator(8, image_shape)
    images = model.predict(np.random.default_rng(0).standard_normal((2, 8)), verbose=0)
    assert images.shape == (2, *image_shape)
    assert images.min() >= 0 and images.max() <= 1


def test_generator_refuses_sizes_not_divisible_by_four():
    with pytest.raises(StageError, match="divisible by 4, got 30×28"):
        generator(8, (30, 28, 1))


def test_one_train_step_updates_both_networks():
    gan = DCGAN(8, (28, 28, 1), seed=0)
    gan.compile(0.001, 0.5)
    before = [w.numpy().copy() for w in (gan.generator.trainable_weights[0], gan.discriminator.trainable_weights[0])]
    losses = gan.train_step(np.random.default_rng(0).random((8, 28, 28, 1), np.float32))
    after = [w.numpy() for w in (gan.generator.trainable_weights[0], gan.discriminator.trainable_weights[0])]
    assert all(not np.allclose(old, new) for old, new in zip(before, after, strict=True))
    assert set(losses) == {"d_loss", "g_loss"} and all(np.isfinite(float(value)) for value in losses.values())


def test_frechet_distance_is_zero_for_a_set_and_grows_with_difference():
    features = np.random.default_rng(0).normal(size=(500, 6))
    shifted = np.random.default_rng(1).normal(1.0, 2.0, size=(500, 6))
    assert frechet_distance(features, features) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(features, shifted) > 10


def test_the_discriminator_gets_its_own_learning_rate_and_smoothed_real_targets():
    gan = DCGAN(8, (28, 28, 1), seed=0)
    gan.compile(0.0001, 0.5, discriminator_learning_rate=0.0004, label_smoothing=0.1)
    assert float(gan.generator_optimizer.learning_rate) == pytest.approx(0.0001)
    assert float(gan.discriminator_optimizer.learning_rate) == pytest.approx(0.0004)
    losses = gan.train_step(np.random.default_rng(0).random((8, 28, 28, 1), np.float32))
    assert gan.real_target == pytest.approx(0.9) and all(np.isfinite(float(value)) for value in losses.values())


def test_minibatch_stddev_tells_copies_from_a_varied_batch():
    varied = np.random.default_rng(0).normal(size=(8, 7, 7, 3)).astype(np.float32)
    copies = np.repeat(varied[:1], 8, axis=0)
    spreads = [np.asarray(MinibatchStddev()(batch))[..., -1] for batch in (varied, copies)]
    assert spreads[0].shape == (8, 7, 7) and spreads[0].min() > 0.5 and spreads[1].max() < 0.01


def test_a_discriminator_with_minibatch_stddev_trains_and_its_generator_saves_alone(tmp_path):
    gan = DCGAN(8, (28, 28, 1), seed=0, minibatch_stddev=True)
    gan.compile(0.001, 0.5)
    losses = gan.train_step(np.random.default_rng(0).random((8, 28, 28, 1), np.float32))
    gan.generator.save(tmp_path / "generator.keras")
    assert "minibatch_stddev" in [layer.name for layer in gan.discriminator.layers]
    loaded = keras.saving.load_model(tmp_path / "generator.keras", safe_mode=True)
    noise = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.predict(noise, verbose=0), gan.generator.predict(noise, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert all(np.isfinite(float(value)) for value in losses.values())


def test_precision_and_recall_are_one_for_identical_sets():
    features = np.random.default_rng(0).normal(size=(200, 5))
    assert precision_recall(features, features) == (1.0, 1.0)


def test_a_generator_collapsed_to_one_point_has_recall_near_zero():
    real = np.random.default_rng(0).normal(size=(200, 5))
    precision, recall = precision_recall(real, np.repeat(real[:1], 200, axis=0))
    # The one point is a real image, so it is inside the real manifold; it covers only itself.
    assert precision == 1.0 and recall <= 1 / 200


def test_far_disjoint_sets_have_zero_precision_and_recall():
    real = np.random.default_rng(0).normal(size=(100, 5))
    far = np.random.default_rng(1).normal(size=(120, 5)) + 100
    assert precision_recall(real, far) == (0.0, 0.0)


def test_precision_and_recall_separate_fidelity_from_variety():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    # Samples from one corner of the real cloud: faithful, but not varied.
    narrow = rng.normal(size=(400, 2)) * 0.2 + 1.0
    precision, recall = precision_recall(real, narrow)
    assert precision > 0.9 and recall < 0.3


def test_precision_and_recall_do_not_depend_on_the_block_size(monkeypatch):
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(150, 4)), rng.normal(0.5, 1.2, size=(130, 4))
    whole = precision_recall(real, generated)
    monkeypatch.setattr(gan_quality, "BLOCK_ENTRIES", 7)  # blocks of one row
    assert precision_recall(real, generated) == whole


@pytest.mark.parametrize(
    ("real", "generated", "message"),
    [
        (np.zeros((10, 4)), np.zeros((10, 3)), "differ in width \\(4 vs 3\\)"),
        (np.zeros((10, 4, 1)), np.zeros((10, 4)), "real features as a 2-D array .* got shape \\(10, 4, 1\\)"),
        (np.zeros((10, 4)), np.zeros((3, 4)), "more than 3 samples"),
        (np.full((10, 4), np.nan), np.zeros((10, 4)), "real features hold NaN"),
    ],
)
def test_precision_and_recall_refuse_bad_features(real, generated, message):
    with pytest.raises(StageError, match=message):
        precision_recall(real, generated)


def test_feature_extractor_needs_a_features_layer():
    inputs = keras.Input((4,))
    with pytest.raises(StageError, match="no layer named 'features'"):
        feature_extractor(keras.Model(inputs, keras.layers.Dense(2, name="logits")(inputs)))


class CrashAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("simulated crash")


def test_training_keeps_the_best_generator_and_resumes_after_a_crash(tmp_path):
    data = write_processed(tmp_path / "processed", per_class=24)
    params = TrainGanParams.model_validate(TINY | {"epochs": 2})
    state = partial(TrainingState, tmp_path / "state", "fid", "min", {"params": params.model_dump()})
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_gan(data, params, 0, tiny_classifier(), state(), [CrashAfterFirstEpoch()])
    assert (tmp_path / "state" / "best.keras").exists() and (tmp_path / "state" / "samples" / "epoch_001.png").exists()
    train_gan(data, params, 0, tiny_classifier(), state(), [])
    state().publish(tmp_path / "models" / "best.keras", tmp_path / "plots" / "history.csv")
    with (tmp_path / "plots" / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1"] and all(float(row["fid"]) >= 0 for row in rows)
    assert all(0 <= float(row[key]) <= 1 for row in rows for key in ("precision", "recall"))
    best = keras.saving.load_model(tmp_path / "models" / "best.keras", safe_mode=True)
    assert best.name == "generator" and best.output_shape == (None, 28, 28, 1)


def test_too_many_fid_samples_is_refused(tmp_path):
    data = write_processed(tmp_path / "processed")
    params = TrainGanParams.model_validate(TINY | {"fid_samples": 10_000})
    state = TrainingState(tmp_path / "state", "fid", "min", {})
    with pytest.raises(StageError, match="fid_samples is 10000 but the val split has"):
        train_gan(data, params, 0, tiny_classifier(), state, [])


GAN = "fashion_mnist-gan"  # registry.task null: data.dataset


def test_stages_train_evaluate_and_gate_the_generator(mlflow_store, tmp_path, monkeypatch, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_gan": TINY}))
    write_processed(tmp_path / "data" / "processed", per_class=24)
    tiny_classifier().save(tmp_path / "cnn.keras")
    run_main(
        train_gan_stage,
        monkeypatch,
        "--data",
        "data/processed",
        "--feature-model",
        "cnn.keras",
        "--model-dir",
        "models/gan",
        "--plots",
        "plots/gan",
    )
    assert (tmp_path / "plots/gan/samples/epoch_001.png").exists() and json.loads(
        (tmp_path / "models/gan/mlflow.json").read_text()
    )["latent_dim"] == 8
    evaluate = [
        "--model-dir",
        "models/gan",
        "--feature-model",
        "cnn.keras",
        "--data",
        "data/processed",
        "--validation",
        "summary.json",
        "--metrics",
        "metrics/gan.json",
        "--plots",
        "plots/gan",
    ]
    client = MlflowClient()
    (tmp_path / "summary.json").write_text(json.dumps({"success": False}))
    run_main(evaluate_gan, monkeypatch, *evaluate)
    assert client.get_registered_model(GAN).aliases == {}
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    run_main(evaluate_gan, monkeypatch, *evaluate)
    metrics = json.loads((tmp_path / "metrics/gan.json").read_text())
    assert metrics["fid_samples"] == 16 and metrics["test_fid"] >= 0 and (tmp_path / "plots/gan/samples.png").exists()
    assert 0 <= metrics["test_precision"] <= 1 and 0 <= metrics["test_recall"] <= 1
    assert metrics["precision_recall_neighbours"] == 3
    logged = client.get_run(json.loads((tmp_path / "models/gan/mlflow.json").read_text())["run_id"]).data.metrics
    assert logged["test_precision"] == pytest.approx(metrics["test_precision"])
    assert logged["test_recall"] == pytest.approx(metrics["test_recall"])
    champion = client.get_model_version_by_alias(GAN, "champion")
    assert str(champion.version) == "1" and float(champion.tags["test_fid"]) == pytest.approx(metrics["test_fid"])
    low, high = metrics["test_fid_ci"]
    assert "Model card: fashion_mnist-gan v1" in champion.description
    card_files = {item.path for item in client.list_artifacts(champion.run_id, "model_card")}
    assert card_files == {"model_card/model_card.md", "model_card/model_card.html"}
    assert low < high and json.loads(champion.tags["test_fid_ci"]) == pytest.approx([low, high])
    pixels = mlflow.pyfunc.load_model(f"models:/{GAN}@champion").predict(np.zeros((2, 8), np.float32))
    assert pixels.shape == (2, 28, 28, 1) and 0 <= pixels.min() and pixels.max() <= 255


def test_the_champion_is_scored_again_in_the_new_features_before_the_gate(
    mlflow_store, tmp_path, monkeypatch, raw_params
):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_gan": TINY}))
    write_processed(tmp_path / "data" / "processed", per_class=24)
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    client = MlflowClient(mlflow_store)  # not the URI an earlier test's stage set in this process
    for version, cnn in ((1, "old-cnn.keras"), (2, "new-cnn.keras")):
        keras.utils.set_random_seed(version)
        tiny_classifier().save(tmp_path / cnn)
        run_main(
            train_gan_stage,
            monkeypatch,
            "--data",
            "data/processed",
            "--feature-model",
            cnn,
            "--model-dir",
            "models/gan",
            "--plots",
            "plots/gan",
        )
        if version == 1:
            run_main(
                evaluate_gan,
                monkeypatch,
                "--model-dir",
                "models/gan",
                "--feature-model",
                cnn,
                "--data",
                "data/processed",
                "--validation",
                "summary.json",
                "--metrics",
                "metrics/gan.json",
                "--plots",
                "plots/gan",
            )
    run_main(
        evaluate_gan,
        monkeypatch,
        "--model-dir",
        "models/gan",
        "--feature-model",
        "new-cnn.keras",
        "--data",
        "data/processed",
        "--validation",
        "summary.json",
        "--metrics",
        "metrics/gan.json",
        "--plots",
        "plots/gan",
    )

    second = client.get_model_version(GAN, "2")
    # Both scored from the same noise in the new CNN's features: the FID drop and its interval.
    low, high = json.loads(second.tags["gate_gain_ci"])
    assert low <= float(second.tags["gate_gain"]) <= high and "gate_p_value" not in second.tags
    assert "FID drop over champion v1 on the same test set" in second.tags["champion_decision"]
    champion = client.get_model_version_by_alias(GAN, "champion").version
    assert (str(champion) == "2") == (low > 0)
