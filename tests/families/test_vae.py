import json
import subprocess
import sys

import keras
import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.errors import StageError
from imagepipe.core.sections import TrainVaeParams
from imagepipe.families.vae.evaluation import parts, serving
from imagepipe.families.vae.model import VAE, encoder, inference_model, kl_divergence, reconstruction_loss
from imagepipe.families.vae.pictures import traversal_latents
from imagepipe.families.vae.training import train
from imagepipe.training.state import TrainingState
from stages import evaluate_family, train_family
from tests.helpers.data import ROOT, write_processed
from tests.helpers.stages import run_main

TINY = {"latent_dim": 2, "beta": 1.0, "anomaly_class": None, "epochs": 2, "batch_size": 8, "learning_rate": 0.003}


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_the_vae_encodes_to_the_latent_space_and_decodes_to_the_image_shape(shape):
    vae = VAE(shape, 3, seed=0)
    images = np.random.default_rng(0).random((2, *shape), np.float32)
    mean, log_variance = vae.encoder(images)
    assert mean.shape == log_variance.shape == (2, 3)
    assert vae.decoder.output_shape == (None, *shape) and vae(images).shape == (2, *shape)
    assert inference_model(vae).predict(images, verbose=0).shape == (2, *shape)


def test_an_encoder_for_a_shape_that_is_not_an_image_is_refused():
    with pytest.raises(StageError, match=r"got the shape \(28, 28\)"):
        encoder((28, 28), 2)


def test_the_kl_term_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = np.zeros((3, 4), np.float32)
    np.testing.assert_allclose(kl_divergence(zeros, zeros), 0.0, atol=1e-7)
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension.
    np.testing.assert_allclose(kl_divergence(zeros + 1, zeros), 2.0, rtol=1e-6)
    assert np.all(np.asarray(kl_divergence(zeros, zeros + 1)) > 0)


def test_the_reconstruction_loss_is_the_cross_entropy_summed_per_image():
    images = np.full((2, 4, 4, 1), 0.5, np.float32)
    np.testing.assert_allclose(reconstruction_loss(images, images), 16 * np.log(2), rtol=1e-6)


def test_a_train_step_updates_the_weights_and_reports_the_three_losses():
    vae = VAE((28, 28, 1), 2, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(0.001))
    before = vae.encoder.trainable_weights[0].numpy().copy()
    logs = vae.train_step(np.random.default_rng(0).random((8, 28, 28, 1), np.float32))
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss"}
    assert float(logs["loss"]) == pytest.approx(float(logs["reconstruction_loss"]) + float(logs["kl_loss"]))
    assert not np.allclose(before, vae.encoder.trainable_weights[0].numpy())


def test_the_vae_class_saves_and_loads_in_safe_mode(tmp_path):
    vae = VAE((28, 28, 1), 2, beta=0.5, seed=3)
    vae.save(tmp_path / "vae.keras")
    loaded = keras.saving.load_model(tmp_path / "vae.keras", safe_mode=True)
    images = np.random.default_rng(0).random((2, 28, 28, 1), np.float32)
    assert isinstance(loaded, VAE) and (loaded.beta, loaded.seed) == (0.5, 3)
    np.testing.assert_allclose(loaded(images), vae(images), atol=1e-6)


def test_the_traversal_walks_the_first_two_latent_dimensions_only():
    latents = traversal_latents(4, 3)
    assert latents.shape == (9, 4) and not latents[:, 2:].any()
    assert latents[0, 0] == latents[2, 0] < 0 < latents[8, 0] and latents[0, 1] < latents[1, 1] < latents[2, 1]


def test_the_best_checkpoint_loads_in_a_fresh_process_and_serves_its_decoder(tmp_path):
    data = write_processed(tmp_path / "processed", per_class=12)
    state = TrainingState(tmp_path / "state", "val_loss", "min", {})
    train(data, TrainVaeParams.model_validate(TINY | {"epochs": 1}), 0, state, [])
    # Without importing imagepipe.families: the checkpoint is built-in layers only.
    check = (
        "import sys; from imagepipe.models.loading import load_keras; model = load_keras(sys.argv[1]); "
        "print(model.name, sorted(layer.name for layer in model.layers))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check, str(state.best_path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "vae ['decoder', 'encoder', 'pixels']" in loaded.stdout
    served = serving(keras.saving.load_model(state.best_path, safe_mode=True), data)
    assert served.config == {"kind": "generator", "output_scale": 255.0, "latent_dim": 2, "model_layer": "decoder"}
    assert served.example.shape == (4, 2) and served.output.shape == (4, 28, 28, 1) and served.output.max() <= 255


def test_a_model_without_encoder_and_decoder_is_refused():
    pixels = keras.Input((4,))
    with pytest.raises(StageError, match="is not a saved VAE"):
        parts(keras.Model(pixels, keras.layers.Dense(2)(pixels), name="classifier"))


def test_training_without_an_unknown_anomaly_class_is_refused(tmp_path):
    data = write_processed(tmp_path / "processed")
    params = TrainVaeParams.model_validate(TINY | {"anomaly_class": "Sock"})
    with pytest.raises(StageError, match=r"anomaly_class 'Sock' is not a class.*'class 0', 'class 1', 'class 2'"):
        train(data, params, 0, TrainingState(tmp_path / "state", "val_loss", "min", {}), [])


@pytest.mark.slow
def test_stages_train_evaluate_and_register_the_vae(mlflow_store, tmp_path, monkeypatch, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_vae": TINY}))
    write_processed(tmp_path / "processed", per_class=24)
    (tmp_path / "summary.json").write_text(json.dumps({"success": True}))
    places = ["--model-dir", "models/vae", "--plots", "plots/vae", "--family", "vae"]
    run_main(train_family, monkeypatch, "--data", "processed", *places)
    evaluate = ["--data", "processed", "--validation", "summary.json", "--metrics", "metrics/vae.json"]
    run_main(evaluate_family, monkeypatch, *places, *evaluate)
    metrics = json.loads((tmp_path / "metrics/vae.json").read_text())
    assert metrics["anomaly_class"] == "class 2" and metrics["anomaly_score"] == "reconstruction_mse"
    low, high = metrics["test_anomaly_auroc_ci"]
    assert 0 <= low <= metrics["test_anomaly_auroc"] <= high <= 1 and metrics["test_negative_elbo"] > 0
    pictures = {path.name for path in (tmp_path / "plots/vae/pictures").iterdir()}
    assert pictures == {"samples.png", "latent_traversal.png", "reconstructions.png"}
    name = f"{raw_params['data']['dataset']}-vae"
    assert str(MlflowClient(mlflow_store).get_model_version_by_alias(name, "champion").version) == "1"
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert served.model_config["kind"] == "generator" and served.model_config["latent_dim"] == 2
    pixels = served.predict(np.zeros((2, 2), np.float32))  # the decoder: latent vectors in, pixels out
    assert pixels.shape == (2, 28, 28, 1) and 0 <= pixels.min() and pixels.max() <= 255
