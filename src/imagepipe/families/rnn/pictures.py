"""The RNN's pictures, as the CNN's: the ground truth vs prediction grid and the confusion matrix."""

from pathlib import Path

import keras
import numpy as np

from imagepipe.core.params import Params
from imagepipe.training.classification import confusion_figure, gt_vs_pr_grid
from imagepipe.training.inputs import load_class_names, load_split, predict

GRID = "gt_vs_pr.png"
CONFUSION = "confusion_matrix.png"


def pictures(model: keras.Model, data: Path, directory: Path, params: Params) -> list[Path]:
    """`gt_vs_pr.png`, visualize.rows × visualize.columns test images drawn at random (seeded),
    and `confusion_matrix.png` of the whole test split, written into directory."""
    test = load_split(data, "test")
    class_names = load_class_names(data)
    predicted = [class_names[i] for i in predict(model, test, params.evaluate.batch_size).argmax(axis=1)]
    actual = [class_names[i] for i in test.labels()]
    rows, columns = params.visualize.rows, params.visualize.columns
    count = min(rows * columns, test.count)
    chosen = np.sort(np.random.default_rng(params.seed).choice(test.count, count, replace=False))
    figures = {
        GRID: gt_vs_pr_grid(
            test.images(chosen), [actual[i] for i in chosen], [predicted[i] for i in chosen], rows, columns
        ),
        CONFUSION: confusion_figure(actual, predicted, class_names),
    }
    written = []
    for name, figure in figures.items():
        figure.savefig(directory / name, dpi=100)
        written.append(directory / name)
    return written
