"""The VAE's pictures: `samples.png`, the decoder on seeded standard-normal noise;
`latent_traversal.png`, the decoder over a grid of the first two latent dimensions at normal
quantiles (the others 0); `reconstructions.png`, test images (normal, then anomalies) beside
their reconstruction from the latent mean, each with its anomaly score."""

from pathlib import Path
from statistics import NormalDist

import keras
import numpy as np
from matplotlib.figure import Figure

from imagepipe.core.params import Params
from imagepipe.families.anomaly.pictures import image_rows, row_titles, saved, show, shown_indices
from imagepipe.families.anomaly.scores import anomaly_index, scored_labels
from imagepipe.families.vae.evaluation import ANOMALY_SCORE, image_scores, parts
from imagepipe.training.inputs import load_class_names, load_split

SAMPLES_SIDE = 8
TRAVERSAL_SIDE = 9
# The traversal spans these quantiles of N(0, 1): the bulk of the prior, without its far tails.
TRAVERSAL_QUANTILES = (0.05, 0.95)


def tiled(images: np.ndarray, side: int, title: str) -> Figure:
    """side × side images in a grid, row by row."""
    figure = Figure(figsize=(side, side + 0.4))
    axes = figure.subplots(side, side, squeeze=False)
    for axis, image in zip(axes.flat, images, strict=True):
        show(axis, image)
    figure.suptitle(title)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.5 / (side + 0.4), hspace=0.05, wspace=0.05)
    return figure


def traversal_latents(latent_dim: int, side: int) -> np.ndarray:
    """side² latent vectors: dimension 0 down the rows, 1 along the columns, each at normal
    quantiles in TRAVERSAL_QUANTILES; the other dimensions 0."""
    values = [NormalDist().inv_cdf(q) for q in np.linspace(*TRAVERSAL_QUANTILES, side)]
    latents = np.zeros((side * side, latent_dim), np.float32)
    latents[:, 0] = np.repeat(values, side)
    latents[:, 1] = np.tile(values, side)
    return latents


def pictures(model: keras.Model, data: Path, plots: Path, params: Params) -> list[Path]:
    _, decoder = parts(model)
    latent_dim = int(decoder.input_shape[-1])
    noise = np.random.default_rng(params.seed).standard_normal((SAMPLES_SIDE**2, latent_dim)).astype(np.float32)
    samples = tiled(decoder.predict(noise, verbose=0), SAMPLES_SIDE, "Samples: the decoder on N(0, I) noise")
    traversal = tiled(
        decoder.predict(traversal_latents(latent_dim, TRAVERSAL_SIDE), verbose=0),
        TRAVERSAL_SIDE,
        "Latent traversal: z0 down, z1 across (normal quantiles), the rest 0",
    )
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, params.train_vae.anomaly_class)
    test = load_split(data, "test")
    labels = scored_labels(test, anomaly)
    shown = shown_indices(labels, anomaly, params.seed)
    images = test.images(shown)
    scores = getattr(image_scores(model, [images], params.seed), ANOMALY_SCORE)
    reconstructions = image_rows(
        {"input": images, "reconstruction": model.predict(images, verbose=0)},
        row_titles(labels[shown], scores, class_names, anomaly),
    )
    return [
        saved(samples, plots / "samples.png"),
        saved(traversal, plots / "latent_traversal.png"),
        saved(reconstructions, plots / "reconstructions.png"),
    ]
