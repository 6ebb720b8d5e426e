"""The autoencoder's pictures: `reconstructions.png`, test images (normal, then anomalies)
beside their noisy copy and the model's reconstruction of it; `anomaly_scores.png`, the
reconstruction errors of normal and anomalous test images, with the served threshold."""

from pathlib import Path

import keras
import numpy as np

from imagepipe.core.params import Params
from imagepipe.families.anomaly.pictures import image_rows, row_titles, saved, score_histogram, shown_indices
from imagepipe.families.anomaly.scores import anomaly_index, per_image_mse, reconstruction_errors, scored_labels
from imagepipe.families.autoencoder.evaluation import served_threshold
from imagepipe.training.inputs import load_class_names, load_split


def pictures(model: keras.Model, data: Path, plots: Path, params: Params) -> list[Path]:
    section, batch_size = params.train_autoencoder, params.evaluate.batch_size
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, section.anomaly_class)
    test = load_split(data, "test")
    labels = scored_labels(test, anomaly)
    shown = shown_indices(labels, anomaly, params.seed)
    images = test.images(shown)
    # The noise training adds (seeded here, for the picture); the score is that of the clean image.
    noisy = np.clip(images + np.random.default_rng(params.seed).normal(0, section.noise_stddev, images.shape), 0, 1)
    noisy = noisy.astype(np.float32)
    scores = per_image_mse(images, model.predict(images, verbose=0))
    columns = {
        "input": images,
        f"noisy (σ={section.noise_stddev:g})": noisy,
        "reconstruction": model.predict(noisy, verbose=0),
    }
    figure = image_rows(columns, row_titles(labels[shown], scores, class_names, anomaly))
    errors = reconstruction_errors(model, test, batch_size)
    histogram = score_histogram(
        errors,
        labels == anomaly,
        class_names[anomaly],
        served_threshold(model, data, anomaly, batch_size),
        "reconstruction error (mean squared, per image)",
    )
    return [saved(figure, plots / "reconstructions.png"), saved(histogram, plots / "anomaly_scores.png")]
