"""Scoring a folder a batch at a time: predictions streamed to a CSV, predicted classes counted,
and the features of a seeded sample of the images kept for the drift test."""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imagepipe.scoring.champion import Champion
from imagepipe.scoring.images import batches
from imagepipe.tracking.serving import PREDICTED_CLASS

PATH_COLUMN = "path"


@dataclass(frozen=True)
class Scores:
    images: int
    class_counts: np.ndarray  # (k,) images predicted as each class
    features: np.ndarray  # (len(sample), d) features of the sampled images


def feature_sample(count: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of at most size of count images, the same for the same seed."""
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def score_images(
    champion: Champion, folder: Path, paths: list[Path], predictions: Path, batch_size: int, sample: np.ndarray
) -> Scores:
    """Predict every image, writing one CSV row each (path relative to folder, predicted_class,
    a probability per class); memory holds one batch of pixels and the sample's features."""
    names = list(champion.class_names)
    counts, features, start = np.zeros(len(names), np.int64), [], 0
    predictions.parent.mkdir(parents=True, exist_ok=True)
    with predictions.open("w", newline="", encoding="utf-8") as output:
        for chosen, images in batches(paths, champion.input_shape, batch_size):
            table = champion.predict(images)
            table.insert(0, PATH_COLUMN, [path.relative_to(folder).as_posix() for path in chosen])
            table.to_csv(output, header=start == 0, index=False, quoting=csv.QUOTE_MINIMAL)
            counts += class_counts(table[PREDICTED_CLASS], names)
            in_batch = sample[(sample >= start) & (sample < start + len(chosen))] - start
            if len(in_batch):
                features.append(champion.embed(images[in_batch]))
            start += len(chosen)
    return Scores(start, counts, np.concatenate(features) if features else np.zeros((0, 0), np.float32))


def class_counts(predicted: pd.Series, names: list[str]) -> np.ndarray:
    codes = pd.Categorical(predicted, categories=names).codes
    if (codes < 0).any():
        unknown = sorted(set(predicted[codes < 0].astype(str)))
        raise ValueError(f"the model predicted classes {unknown} that its drift reference does not name: {names}")
    return np.bincount(codes, minlength=len(names))
