"""The VAE on the test set, and what it is served with.

Metrics (metrics/vae.json): `test_anomaly_auroc`, the champion metric, the AUROC of the
anomaly score for telling the anomaly class from the others, on the whole test split;
`anomaly_score`, which score that is (ANOMALY_SCORE); `test_reconstruction_mse`, the mean
per-image MSE of the normal test images reconstructed from their latent mean;
`test_negative_elbo`, their mean negative ELBO (binary cross-entropy summed per image + KL, in
nats, one seeded sample of z per image); `anomaly_class`; `num_test_images`,
`num_test_anomalies`. The items are per test image [anomaly score, is_anomaly].
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.params import Params
from imagepipe.families.anomaly.scores import anomaly_index, anomaly_metrics, per_image_mse, scored_items, scored_labels
from imagepipe.families.base import Evaluation, Serving
from imagepipe.families.vae.model import kl_divergence, reconstruction_loss
from imagepipe.training.inputs import Split, batches, load_class_names, load_split

# The anomaly score: the MSE of the reconstruction from the latent mean. On Fashion-MNIST
# without Bag it separates better than the negative ELBO, at every latent size tried: the
# ELBO's summed cross-entropy grows with how much of the canvas an item covers, which garments
# and bags share.
ANOMALY_SCORE = "reconstruction_mse"
SERVING_EXAMPLES = 4


@dataclass(frozen=True)
class Scores:
    """Per image: MSE of the reconstruction from the latent mean, and the negative ELBO."""

    reconstruction_mse: np.ndarray
    negative_elbo: np.ndarray


def parts(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The encoder and decoder nested in a saved VAE (model.inference_model), or a StageError."""
    names = [layer.name for layer in model.layers]
    if "encoder" not in names or "decoder" not in names:
        raise StageError(f"model {model.name!r} is not a saved VAE: it has no nested encoder and decoder ({names})")
    return model.get_layer("encoder"), model.get_layer("decoder")


def image_scores(model: keras.Model, image_batches: Iterable[np.ndarray], seed: int) -> Scores:
    """The Scores of each image of each batch (pixels in [0, 1]), in order."""
    encoder, decoder = parts(model)
    rng = np.random.default_rng(seed)
    mse, negative_elbo = [], []
    for images in image_batches:
        mean, log_variance = (np.asarray(part) for part in encoder.predict_on_batch(images))
        mse.append(per_image_mse(images, decoder.predict_on_batch(mean)))
        latent = (mean + np.exp(0.5 * log_variance) * rng.standard_normal(mean.shape)).astype(np.float32)
        sampled = decoder.predict_on_batch(latent)
        negative_elbo.append(
            np.asarray(reconstruction_loss(images, sampled)) + np.asarray(kl_divergence(mean, log_variance))
        )
    return Scores(np.concatenate(mse), np.concatenate(negative_elbo).astype(np.float64))


def split_scores(model: keras.Model, split: Split, batch_size: int, seed: int) -> Scores:
    """The Scores of every image of split, in order, a batch at a time."""
    data = batches(split, batch_size, seed=0, cache=False).as_numpy_iterator()
    return image_scores(model, (images for images, _ in data), seed)


def evaluate(model: keras.Model, data: Path, params: Params) -> Evaluation:
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, params.train_vae.anomaly_class)
    test = load_split(data, "test")
    labels = scored_labels(test, anomaly)
    scores = split_scores(model, test, params.evaluate.batch_size, params.seed)
    normal = labels != anomaly
    items = scored_items(getattr(scores, ANOMALY_SCORE), labels, anomaly)
    metrics = anomaly_metrics(items, scores.reconstruction_mse[normal].mean(), class_names[anomaly])
    metrics |= {"anomaly_score": ANOMALY_SCORE, "test_negative_elbo": float(scores.negative_elbo[normal].mean())}
    return Evaluation(metrics, items)


def serving(model: keras.Model, data: Path, params: Params | None = None) -> Serving:
    """Served as a generator: the decoder nested in model, latent_dim standard-normal noise in,
    pixels in 0..255 out. `model_layer` names the nested model the served pyfunc runs. (data and
    params: what every family's serving is given; a generator needs neither.)"""
    _, decoder = parts(model)
    latent_dim = int(decoder.input_shape[-1])
    noise = np.random.default_rng(0).standard_normal((SERVING_EXAMPLES, latent_dim)).astype(np.float32)
    config = {"kind": "generator", "output_scale": 255.0, "latent_dim": latent_dim, "model_layer": decoder.name}
    return Serving(noise, decoder.predict(noise, verbose=0) * 255.0, config)
